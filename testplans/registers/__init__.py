"""Register-function plans: identity and software, reverse energy and direction, tariff switching, register
against display, event-log rollover (and the relay's reported state, in the security plan)."""
