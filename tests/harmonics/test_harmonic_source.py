"""Harmonic content end to end on the twin, in process: the source driver programs it (the twin's dialect and
the Fluke 6100B's), the World carries it, the reference measures total and fundamental power and content, the
meter registers what its harmonic knobs say; and the plans' test waveforms are the standard's."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from drivers.errors import InstrumentError, SafetyLimitError, ValidationError
from drivers.source import Harmonic
from rig.bench import Bench, bench_session
from rig.config import BENCHES_DIR, load_bench
from rig.procedures import LoadPoint, energise, measure_errors
from testplans.harmonics import spec

FIFTH = (Harmonic(5, 10.0, 0.0, 40.0, 0.0),)


@pytest.fixture(params=["twin.yaml", "twin-fluke.yaml"])
def twin_bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    with bench_session(load_bench(BENCHES_DIR / request.param)) as opened:
        yield opened


def test_content_reaches_the_terminals_and_the_reference(twin_bench: Bench) -> None:
    bench = twin_bench
    point = LoadPoint(voltage_v=220.0, current_a=30.0, harmonics=FIFTH)
    energise(bench, point)
    reading = bench.reference.measure()
    # 4 % more power than the fundamental's, RMS values of the whole waveform.
    assert reading.power_w == pytest.approx(220 * 30 * 1.04, rel=1e-3)
    assert reading.current_a == pytest.approx(30 * math.sqrt(1.16), rel=1e-3) or bench.source.dialect.name == \
        "fluke-6100b"  # the Fluke personality's readings are its channel amplitudes
    errors = measure_errors(bench, bench.positions, power_w=point.active_power_w)
    assert all(abs(e) < 0.3 for e in errors[0]), "a healthy meter registers the harmonics' energy too"
    # A sine point afterwards clears the content.
    energise(bench, LoadPoint(voltage_v=220.0, current_a=30.0))
    assert bench.reference.measure().power_w == pytest.approx(220 * 30, rel=1e-3)


def test_the_twins_reference_measures_fundamental_power_and_content() -> None:
    with bench_session(load_bench()) as bench:
        energise(bench, LoadPoint(voltage_v=220.0, current_a=10.0, phase_deg=60.0, harmonics=FIFTH))
        assert bench.reference.fundamental_power_w() == pytest.approx(220 * 10 * 0.5, rel=1e-3)
        assert bench.reference.measure().power_w == pytest.approx(220 * 10 * (0.5 + 0.04), rel=1e-3)
        fifth = bench.reference.harmonic_content(5)
        assert (fifth.voltage_pct, fifth.current_pct) == (pytest.approx(10, rel=1e-3), pytest.approx(40, rel=1e-3))
        assert bench.reference.harmonic_content(3).current_pct == 0.0


def _sent(bench: Bench) -> list[str]:
    """What the source driver sends from now on (each command checked against the error queue)."""
    sent: list[str] = []
    send = bench.source.send

    def recording(message: str) -> None:
        sent.append(message)
        send(message)

    bench.source.send = recording  # type: ignore[method-assign]
    return sent


def test_fluke_rows_program_absolute_amplitudes_then_the_fundamental() -> None:
    with bench_session(load_bench(BENCHES_DIR / "twin-fluke.yaml")) as bench:
        sent = _sent(bench)
        bench.source.apply(voltage_v=220.0, current_a=30.0, harmonics=FIFTH)
        headers = [m.split()[0] for m in sent]
        harmonic = [m for m, h in zip(sent, headers) if ("MHAR:CLE" in h or "MHAR:STAT" in h or "MHAR:HARM" in h)
                    and not h.endswith(":PANG")]
        assert harmonic == ["SOUR:PHAS1:VOLT:MHAR:CLE", "SOUR:PHAS1:CURR:MHAR:CLE",
                            "SOUR:PHAS1:VOLT:MHAR:HARM5 22,0.000", "SOUR:PHAS1:CURR:MHAR:HARM5 12,0.000",
                            "SOUR:PHAS1:VOLT:MHAR:HARM1 220,0.000", "SOUR:PHAS1:CURR:MHAR:HARM1 30,0.000",
                            "SOUR:PHAS1:VOLT:MHAR:STAT ON", "SOUR:PHAS1:CURR:MHAR:STAT ON"]
        assert bench.reference.measure().power_w == 0.0  # output off: nothing flows yet


@pytest.mark.parametrize(("content", "message"), [
    ((Harmonic(1, 0, 0, 10, 0),), r"order 1: .*the fundamental is the load point itself"),
    ((Harmonic(0.5, 0, 0, 10, 0),), r"order 0\.5: this source generates whole harmonic orders only"),
    ((Harmonic(0, 0, 0, 10, 90),), r"order 0: DC has no phase angle"),
    ((Harmonic(3, 0, 0, 120, 0),), r"order 3: amplitude 120 % is outside 0\.\.100 %"),
    ((Harmonic(3, 0, 0, 10, 0), Harmonic(3, 5, 0, 0, 0)), r"order 3 is given twice"),
])
def test_content_a_source_cannot_generate_is_refused_before_anything_is_sent(content: tuple[Harmonic, ...],
                                                                             message: str) -> None:
    with bench_session(load_bench(BENCHES_DIR / "twin-fluke.yaml")) as bench:
        sent = _sent(bench)
        with pytest.raises(ValidationError, match=message):
            bench.source.apply(voltage_v=220.0, current_a=5.0, harmonics=content)
        assert sent == []


def test_the_safety_limit_applies_to_the_whole_waveforms_rms() -> None:
    # max 72 A: a 60 A fundamental with 90 % DC is 80.7 A RMS
    with bench_session(load_bench()) as bench, pytest.raises(SafetyLimitError, match=r"current 80\.7\d* A is above"):
        bench.source.apply(voltage_v=220.0, current_a=60.0, harmonics=(Harmonic(0, 0, 0, 90, 0),))


def test_a_voltage_only_source_has_no_harmonic_generator() -> None:
    from drivers.ac_sources import CHROMA_61500
    from drivers.source import PowerSource
    from drivers.transport import MessageTransport

    class Silent(MessageTransport):  # type: ignore[misc]
        resource = "chroma"

        def __init__(self) -> None:
            pass

    source = PowerSource(Silent(), max_voltage_v=264, max_current_a=72, dialect=CHROMA_61500)
    with pytest.raises(InstrumentError, match="has no harmonic generator"):
        source.apply(voltage_v=220.0, current_a=0.0, harmonics=FIFTH)


def test_the_twin_meter_registers_harmonic_energy_as_its_knob_says() -> None:
    config = load_bench()
    data = config.model_dump()
    data["twin"]["meter"]["harmonics"]["harmonic_error_pct"] = -100.0  # the fundamental only
    from rig.config import validate_bench
    with bench_session(validate_bench(data)) as bench:
        point = LoadPoint(voltage_v=220.0, current_a=30.0, harmonics=FIFTH)
        energise(bench, point)
        errors = measure_errors(bench, bench.positions, power_w=point.active_power_w)[0]
        assert sum(errors) / len(errors) == pytest.approx(-100 * 0.04 / 1.04, abs=0.1)


def test_the_standards_waveforms() -> None:
    half = spec.spectrum(spec.half_wave)
    content = {h.order: h.current_pct for h in half.content}
    # Half-wave rectified sine of peak 1: fundamental 1/2 (peak), DC 1/π, 2nd 2/(3π) (peak).
    assert half.fundamental == pytest.approx(0.5 / math.sqrt(2), rel=1e-6)
    assert content[0] == pytest.approx(100 * 2 * math.sqrt(2) / math.pi, rel=1e-3)
    assert content[2] == pytest.approx(100 * 4 / (3 * math.pi), rel=1e-3)
    assert all(o == int(o) and (o == 0 or o % 2 == 0) for o in content)
    fired = spec.spectrum(spec.phase_fired)
    assert all(h.order % 2 == 1 for h in fired.content) and fired.fundamental_phase_deg > 0  # lags: odd only
    burst = spec.spectrum(spec.burst_fired)
    assert burst.fundamental == pytest.approx(0.5 / math.sqrt(2), rel=1e-6)  # on half the time
    assert any(h.order < 1 for h in burst.content), "a burst-fired current has sub-harmonics"


def test_the_twins_harmonic_commands_refuse_what_a_source_would() -> None:
    with bench_session(load_bench()) as bench:
        transport = bench.source.transport
        transport.write("SOUR:HARM:CURR 1,10,0")  # the fundamental is not a harmonic
        transport.write("SOUR:HARM:CURR 51,10,0")  # above the generator's orders
        transport.write("SOUR:HARM:CURR 0,10,90")  # DC with a phase angle
        transport.write("SOUR:HARM:CURR 3,10")  # no phase angle
        assert bench.source.errors() == [(-222, "Data out of range")] * 3 + [(-109, "Missing parameter")]
        transport.write("SOUR:HARM:CURR 0.5,20,-90;:SOUR:HARM:VOLT 5,10,0")
        assert transport.query("SOUR:HARM:CURR?") == "0.5,20.0000,-90.000"
        transport.write("SOUR:HARM:CLE")
        assert transport.query("SOUR:HARM:VOLT?") == ""
