"""Bench files (YAML). A package only so that the embedded defaults ship with `pip install .`."""
