"""A three-item plan for the endings tests: every item energises the source and leaves it on (so every
ending has an energised source to drive safe), the second keeps the plot renderer busy.

Not collected by the suite (no test_ prefix); tests/test_endings.py passes it to `rig run` with the
`signal_at` plugin, whose `checkpoint` fixture sends the signal under test at a named moment.
"""

from rig.plots import CurvePoint
from rig.procedures import LoadPoint, energise


def _on(bench, fraction: float) -> None:
    energise(bench, LoadPoint(voltage_v=bench.meter.un_v, current_a=bench.meter.ib_a * fraction))


def test_first(bench, record, checkpoint) -> None:
    _on(bench, 0.5)
    checkpoint("early")
    record("energised", 1, "", low=1, high=1)


def test_second(bench, record, renderer, checkpoint) -> None:
    points = [CurvePoint(current_a=i, error_pct=0.1 * i, limit_pct=1.0, label=f"{i} A") for i in (1, 5, 10, 60)]
    renderer.submit_curves("endings", {"1.0": points}, title="endings", imax_a=bench.meter.imax_a,
                           ib_a=bench.meter.ib_a)
    _on(bench, 1.0)
    checkpoint("mid")
    record("energised", 1, "", low=1, high=1)


def test_third(bench, record, checkpoint, teardown_checkpoint) -> None:
    _on(bench, 2.0)
    record("energised", 1, "", low=1, high=1)
    checkpoint("last-body")
