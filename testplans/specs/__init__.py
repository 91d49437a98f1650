"""Metering-accuracy standards as data (test-plan layer): YAML tables beside this file, read
by `files`; the plans ask `accuracy` (the queries).

Imports nothing of the rig, no instrument I/O and no pytest; the tables are read on first use, not at import.
"""
