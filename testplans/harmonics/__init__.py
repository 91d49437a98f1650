"""Harmonic influence and harmonic readings: the meter under distorted voltage and current."""
