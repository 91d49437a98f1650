"""DL/T 645-2007 communication plans: framing, timing, addressing, clock sync, consistency."""
