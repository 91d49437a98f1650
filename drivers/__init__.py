"""Instrument drivers, DUT links, sans-IO codecs and crypto.

Layer rule: nothing here imports `rig`, `fixtures`, `testplans` or pytest, and nothing opens
hardware at import time.
"""
