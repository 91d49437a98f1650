"""Metering accuracy plans: basic error, starting current, no-load, repeatability, influence
quantities, meter constant. Limits come from `testplans/specs` (data with sources)."""
