"""The meter HIL rig: composition layer (bench config, clock, procedures, results, reports, CLI, twin).

Imports `drivers`; never imported by `drivers`.
"""

__version__ = "0.1.0"
