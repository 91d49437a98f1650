"""Power plans: outages, power-down events, the RTC on the battery, the clock battery, voltage dips and
short interruptions, the start-up after power returns."""
