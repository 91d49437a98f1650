"""RTC on mains: the meter's daily error against the bench clock over 24 h of bench time at the reference
temperature, and at a chamber temperature (the RTC's temperature compensation)."""
