"""Root conftest: loads the rig's pytest plugin for the rig's own tests and the test plans."""

pytest_plugins = ["fixtures.plugin"]
