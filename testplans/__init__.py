"""Test plans: what a meter must do, in volts, amperes, kWh and data identifiers.

Plans use fixtures and `rig.procedures`; no bytes, no SCPI, no sleeps outside the injected clock.
"""
