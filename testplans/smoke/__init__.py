"""Bench smoke plan: instruments answer, the source reaches its set-point, every meter registers."""
