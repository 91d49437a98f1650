"""A plan that energises the source and then holds forever (until interrupted): for the SIGTERM test.

Not collected by the suite (no test_ prefix); the test passes it to `rig run` explicitly.
"""

from rig.procedures import LoadPoint, energise


def test_energise_and_hold(bench, record) -> None:
    energise(bench, LoadPoint(voltage_v=bench.meter.un_v, current_a=bench.meter.ib_a))
    record("energised", 1, "")
    bench.clock.wait_until(lambda: False, timeout_s=1e9, poll_s=60)
