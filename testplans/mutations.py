"""The defect catalogue: for every twin knob, a value just outside the spec (the plan must fail), one
just inside (the plan must pass), and the plan tests expected to catch it.

Values derive from the meter type and `testplans/specs`, so they follow the class. Used by
`rig mutate` and by the plans' own tests. Later issues add their knobs here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rig.procedures import pulse_period_s, pulses_for_gate
from testplans.comms import spec as comms_spec
from testplans.dlt698 import spec as dlt698_spec
from testplans.power import spec as power_spec
from testplans.specs import accuracy as spec
from testplans.spi import spec as spi_spec

ACCURACY = "testplans/accuracy/test_accuracy.py"


@dataclass(frozen=True)
class Mutation:
    """One defect: a knob, its violating and its tolerable value, and the tests that must catch it."""

    knob: str
    catches: tuple[str, ...]  # plan test ids (file::function) that must fail when the knob is outside
    outside: Callable[[spec.MeterTypeLike], float | str]
    inside: Callable[[spec.MeterTypeLike], float | str]
    why: str
    # The knob value at which the plan's limit is just reached (None for on/off knobs): the marginal-defect
    # benchmark (benchmarks/plan_power.py) tries 1.1x and 0.8x of it.
    boundary: Callable[[spec.MeterTypeLike], float] | None = None
    # For a knob whose defect is a deviation from a nominal value (a threshold, a delay that is fine up to a
    # point): the nominal; the benchmark then tries nominal + factor x (boundary - nominal).
    nominal: Callable[[spec.MeterTypeLike], float] | None = None

    def override(self, meter: spec.MeterTypeLike, *, violating: bool = True) -> str:
        """The `--set` text for this knob (a knob given as text, e.g. a choice of words, as it is)."""
        value = (self.outside if violating else self.inside)(meter)
        return f"{self.knob}={value}" if isinstance(value, str) else f"{self.knob}={value:.6g}"

    def value_at(self, meter: spec.MeterTypeLike, factor: float) -> float | None:
        """The knob value at `factor` of the way from nominal (0 unless given) to the boundary; None without one."""
        if self.boundary is None:
            return None
        base = self.nominal(meter) if self.nominal is not None else 0.0
        return base + factor * (self.boundary(meter) - base)


def flag(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    """An on/off defect: on (1) outside, off (0, the healthy meter) inside."""
    return lambda meter: 1.0 if violating else 0.0


def _max_basic_limit(meter: spec.MeterTypeLike, pf: str) -> float:
    """The tightest limit of the class at `pf` (Itr/0.1 Ib .. Imax), %."""
    return min(p.limit.value_pct for p in spec.load_points(meter) if p.pf.label == pf)


def _interval(meter: spec.MeterTypeLike) -> float:
    return spec.rounding_interval_pct(meter)


def _gain(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # Outside: past the limit by more than half a rounding interval, so the rounded value exceeds it.
    def value(meter: spec.MeterTypeLike) -> float:
        limit = _max_basic_limit(meter, "1")
        return limit + 2 * _interval(meter) if violating else 0.8 * limit

    return value


def _phase(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # At 0.5L the error is about -tan(60°)·δ: find the δ (degrees) that reaches the 0.5L limit.
    def value(meter: spec.MeterTypeLike) -> float:
        limit = _max_basic_limit(meter, "0.5L")
        boundary = math.degrees(limit / 100 / math.tan(math.radians(60)))
        return boundary * (1.0 + 3 * _interval(meter) / limit) if violating else 0.7 * boundary

    return value


def _start(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    return lambda meter: spec.starting_current_a(meter) * (1.15 if violating else 0.85)


def _creep(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # One pulse is 3.6e6 / C joules: outside registers 2.5 pulses over the test, inside half of one.
    def value(meter: spec.MeterTypeLike) -> float:
        pulse_j = 3.6e6 / meter.constant_imp_per_kwh
        return (2.5 if violating else 0.5) * pulse_j / spec.creep_duration_s(meter)

    return value


def _constant(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    def value(meter: spec.MeterTypeLike) -> float:
        limit = spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1")).value_pct
        return limit + 2 * _interval(meter) if violating else 0.6 * limit

    return value


def _influence(name: str, violating: bool | None) -> Callable[[spec.MeterTypeLike], float]:
    # Change of error = sensitivity × deviation (%): outside overshoots the limit by a quarter.
    def value(meter: spec.MeterTypeLike) -> float:
        test = spec.influence_test(meter, name)
        limit = min(spec.influence_limit_pct(meter, name, pf).value_pct for pf in test.pfs)
        deviation = max(abs(d) for d in test.deviations_pct)
        return limit / deviation * (1.0 if violating is None else 1.25 if violating else 0.6)

    return value


def _reading_gate_s(meter: spec.MeterTypeLike, pf: spec.PowerFactor) -> float:
    """Length of one error reading at Ib (a whole number of pulses, at least MIN_GATE_S), s."""
    power_w = meter.un_v * meter.ib_a * math.cos(math.radians(pf.angle_deg))
    return pulses_for_gate(power_w, meter.constant_imp_per_kwh) * pulse_period_s(power_w, meter.constant_imp_per_kwh)


def _noise(violating: bool | None) -> Callable[[spec.MeterTypeLike], float]:
    # A reading averages the per-second draws over its gate T: its sigma is noise * sqrt(T - 1/3) / T (the
    # expected sum of the squared overlaps of a gate of random phase with whole seconds). The knob puts the
    # readings' standard deviation at 1.2x (outside) or 0.8x (inside) the limit at the repeatability test's
    # worst power factor: the verdicts the test's reading count is chosen for.
    def value(meter: spec.MeterTypeLike) -> float:
        per_pf = []
        for label in ("1", "0.5L"):
            pf = spec.power_factor(label)
            gate = _reading_gate_s(meter, pf)
            limit = spec.repeatability_limit_pct(meter, meter.ib_a, pf).value_pct
            per_pf.append(limit * gate / math.sqrt(gate - 1.0 / 3.0))
        return min(per_pf) * (1.0 if violating is None else 1.2 if violating else 0.8)

    return value


def _worst_point(meter: spec.MeterTypeLike, error_per_unit: Callable[[spec.LoadPointSpec], float],
                 factor: float) -> float:
    """The knob value whose error reaches `factor` x the limit at the load point where the knob is worst
    (largest |error per unit of knob| / limit), with the sign that makes that error positive (the healthy
    meter's own small positive gain error adds to it, never hides it)."""
    worst = max(spec.load_points(meter), key=lambda p: abs(error_per_unit(p)) / p.limit.value_pct)
    return factor * worst.limit.value_pct / error_per_unit(worst)


def _factor(violating: bool | None) -> float:
    """Of the limit at the worst point: 1.1 outside, 0.8 inside, 1.0 the boundary (None)."""
    return 1.0 if violating is None else 1.1 if violating else 0.8


def _offset(violating: bool | None) -> Callable[[spec.MeterTypeLike], float]:
    # A fixed error power P0 is an error of 100 * P0 / (U I cos phi) %: worst at the lowest power of the plan.
    def per_watt(meter: spec.MeterTypeLike) -> Callable[[spec.LoadPointSpec], float]:
        return lambda p: 100.0 / (meter.un_v * p.current_a * math.cos(math.radians(p.pf.angle_deg)))

    return lambda meter: _worst_point(meter, per_watt(meter), _factor(violating))


def _nonlinearity(violating: bool | None) -> Callable[[spec.MeterTypeLike], float]:
    # k % per decade is k * log10(I / Ib) %: worst at one end of the range (0.05 Ib or Imax, by the limits).
    def per_decade(meter: spec.MeterTypeLike) -> Callable[[spec.LoadPointSpec], float]:
        return lambda p: math.log10(p.current_a / meter.ib_a)

    return lambda meter: _worst_point(meter, per_decade(meter), _factor(violating))


METERING = "twin.meter.metering"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{METERING}.gain_error_pct", (f"{ACCURACY}::test_basic_error",), _gain(True), _gain(False),
             "registers too much energy at every load point", boundary=lambda meter: _max_basic_limit(meter, "1")),
    Mutation(f"{METERING}.phase_error_deg", (f"{ACCURACY}::test_basic_error",), _phase(True), _phase(False),
             "current channel phase error: wrong at 0.5L and 0.8C only",
             boundary=lambda meter: math.degrees(_max_basic_limit(meter, "0.5L") / 100 / math.tan(math.radians(60)))),
    Mutation(f"{METERING}.start_current_a", (f"{ACCURACY}::test_starting_current",), _start(True), _start(False),
             "does not start at the starting current", boundary=spec.starting_current_a),
    Mutation(f"{METERING}.creep_w", (f"{ACCURACY}::test_no_load",), _creep(True), _creep(False),
             "registers with the current circuit open",
             # The test allows max_pulses pulses: one more pulse's energy over the test is given whatever the
             # pulse accumulator held at the start.
             boundary=lambda meter: (spec.creep_max_pulses(meter) + 1) * 3.6e6 / meter.constant_imp_per_kwh
             / spec.creep_duration_s(meter)),
    Mutation(f"{METERING}.constant_error_pct", (f"{ACCURACY}::test_meter_constant",), _constant(True),
             _constant(False), "pulse output off from the register",
             boundary=lambda meter: spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1")).value_pct),
    Mutation(f"{METERING}.voltage_sensitivity_pct_per_pct", (f"{ACCURACY}::test_influence",),
             _influence("voltage", True), _influence("voltage", False), "error moves with the voltage",
             boundary=_influence("voltage", None)),
    Mutation(f"{METERING}.frequency_sensitivity_pct_per_pct", (f"{ACCURACY}::test_influence",),
             _influence("frequency", True), _influence("frequency", False), "error moves with the frequency",
             boundary=_influence("frequency", None)),
    Mutation(f"{METERING}.noise_pct", (f"{ACCURACY}::test_repeatability",), _noise(True), _noise(False),
             "readings scatter", boundary=_noise(None)),
    Mutation(f"{METERING}.offset_power_w", (f"{ACCURACY}::test_basic_error",), _offset(True), _offset(False),
             "an offset in the power channel: wrong at low current", boundary=_offset(None)),
    Mutation(f"{METERING}.nonlinearity_pct_per_decade", (f"{ACCURACY}::test_basic_error",), _nonlinearity(True),
             _nonlinearity(False), "error changes along the current range", boundary=_nonlinearity(None)),
)


# ---------------------------------------------------------------- SPI: metering chip and MCU

SPI_BUS = "testplans/spi/test_bus.py"
SPI_REGISTERS = "testplans/spi/test_registers.py"
SPI_CONSISTENCY = "testplans/spi/test_consistency.py"
SPI = "twin.meter.spi"



def _energy_scale(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # The dose runs at Imax, PF 1; one count is 0.1 % of it, the healthy chip adds its own small error.
    def value(meter: spec.MeterTypeLike) -> float:
        limit = spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1")).value_pct
        return 1.5 * limit + 0.2 if violating else 0.5 * limit

    return value


def _poll_interval(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    return lambda meter: spi_spec.MAX_POLL_INTERVAL.value * (1.5 if violating else 0.75)


def _cs_glitch(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # One frame in twenty: a dozen glitches in the plan's capture. Any glitch is a defect.
    return lambda meter: 0.05 if violating else 0.0


def _rms_noise(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # Outside, twice the tighter noise limit (the Vrms one); inside, half of it.
    return lambda meter: _rms_noise_boundary(meter) * (2.0 if violating else 0.5)


def _poll_jitter(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # Outside, twice the jitter limit (1 sigma); inside, half of it.
    return lambda meter: _poll_jitter_boundary(meter) * (2.0 if violating else 0.5)


def _limit_at_imax(meter: spec.MeterTypeLike) -> float:
    """The class's error limit at Imax, PF 1 (the doses of the constant and chip-energy tests), %."""
    return spec.error_limit_pct(meter, meter.imax_a, spec.power_factor("1")).value_pct


def _frames_in_capture() -> int:
    """The fewest register reads a healthy MCU makes in the plan's capture (each polled register once a period
    from its first poll on)."""
    polls = math.floor((spi_spec.CAPTURE_S - spi_spec.MAX_FIRST_POLL.value) / spi_spec.MAX_POLL_INTERVAL.value)
    return len(spi_spec.POLLED_REGISTERS) * polls


def _cs_glitch_boundary(meter: spec.MeterTypeLike) -> float:
    # Any malformed frame fails, so the plan's resolution is its capture: the glitch rate it sees at least once
    # with probability 0.999 in the fewest frames a healthy capture holds.
    return math.log(1000.0) / _frames_in_capture()


def _rms_noise_boundary(meter: spec.MeterTypeLike) -> float:
    # The plan judges the standard deviation of single Vrms and Irms readings against the reference's (over
    # spi_spec.READINGS of them) with a noise limit each; the knob scatters both by the same sigma, so the tighter
    # limit (Vrms) is reached first. The scatter measured adds the reference's own (0.01 % on the twin) in
    # quadrature: 0.2 % of the limit, well within the plan's separation of 1.1x from 0.8x.
    return min(spi_spec.VOLTAGE_NOISE.value, spi_spec.CURRENT_NOISE.value)


def _poll_jitter_boundary(meter: spec.MeterTypeLike) -> float:
    # Each interval between the MCU's reads is the period plus a draw of the jitter: the plan judges their standard
    # deviation (over spi_spec.SPREAD_SAMPLES intervals of steady polling) against the jitter limit itself.
    return spi_spec.MAX_POLL_JITTER.value


SPI_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{SPI}.write_protect_ignored",
             (f"{SPI_REGISTERS}::test_write_protection", f"{SPI_REGISTERS}::test_calibration_checksum_stable"),
             flag(True), flag(False), "the chip takes writes while protected"),
    Mutation(f"{SPI}.rdata_not_updated", (f"{SPI_REGISTERS}::test_rdata_wdata_echo",), flag(True), flag(False),
             "RData does not echo the last read"),
    Mutation(f"{SPI}.wrong_device_id", (f"{SPI_REGISTERS}::test_device_id",), flag(True), flag(False),
             "the chip is not the RN8209 it claims to be"),
    Mutation(f"{SPI}.msb_last", (f"{SPI_REGISTERS}::test_device_id",), flag(True), flag(False),
             "register data least significant byte first"),
    # The chip is the meter's front end: its energy error is in the pulses and the registers as well.
    Mutation(f"{SPI}.energy_scale_error_pct", (f"{SPI_CONSISTENCY}::test_chip_energy_agrees_with_reference",
                                               f"{ACCURACY}::test_basic_error", f"{ACCURACY}::test_meter_constant"),
             _energy_scale(True), _energy_scale(False), "the chip's energy counts wrong, and so does the meter",
             boundary=_limit_at_imax),
    Mutation(f"{SPI}.mcu_poll_interval_s", (f"{SPI_BUS}::test_mcu_polling_rate",), _poll_interval(True),
             _poll_interval(False), "the MCU polls the chip too rarely",
             boundary=lambda meter: spi_spec.MAX_POLL_INTERVAL.value, nominal=lambda meter: 1.0),
    Mutation(f"{SPI}.cs_glitch", (f"{SPI_BUS}::test_frame_structure",), _cs_glitch(True), _cs_glitch(False),
             "CS released mid-frame", boundary=_cs_glitch_boundary),
    Mutation(f"{SPI}.rms_noise_pct", (f"{SPI_CONSISTENCY}::test_chip_readings_agree_with_reference",),
             _rms_noise(True), _rms_noise(False),
             "the chip's single Vrms and Irms readings scatter past the noise limit (a third of the tolerance)",
             boundary=_rms_noise_boundary),
    Mutation(f"{SPI}.mcu_poll_jitter_s", (f"{SPI_BUS}::test_mcu_polling_rate",), _poll_jitter(True),
             _poll_jitter(False), "the MCU's polling timer jitters past its limit (standard deviation of intervals)",
             boundary=_poll_jitter_boundary),
)
MUTATIONS = (*MUTATIONS, *SPI_MUTATIONS)


# ---------------------------------------------------------------- UART: the management module's DL/T 645

COMMS_FRAMING = "testplans/comms/test_framing.py"
COMMS_CLOCK = "testplans/comms/test_clock.py"
UART = "twin.meter.uart"



def _reply_delay(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # The twin adds ±0.04 s of jitter to the knob: 0.6 s is past the 500 ms limit for every reply, 0.4 s
    # inside it for every reply.
    def value(meter: spec.MeterTypeLike) -> float:
        high = comms_spec.REPLY_LATENCY.high
        assert high is not None
        return high * (1.2 if violating else 0.8)

    return value


UART_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{UART}.checksum_error", (f"{COMMS_FRAMING}::test_reply_frames_conform",), flag(True),
             flag(False), "replies carry a wrong checksum"),
    Mutation(f"{UART}.address_high_byte_first", (f"{COMMS_FRAMING}::test_reply_frames_conform",
                                                 f"{COMMS_FRAMING}::test_wildcard_and_broadcast"),
             flag(True), flag(False), "replies carry the address high byte first"),
    Mutation(f"{UART}.no_data_offset", (f"{COMMS_FRAMING}::test_reply_frames_conform",), flag(True),
             flag(False), "reply data without +33H"),
    Mutation(f"{UART}.reply_delay_s", (f"{COMMS_FRAMING}::test_reply_latency",), _reply_delay(True),
             _reply_delay(False), "replies come later than 500 ms",
             boundary=lambda meter: _reply_delay(True)(meter) / 1.2),
    Mutation(f"{UART}.ignores_preamble", (f"{COMMS_FRAMING}::test_preamble_handling",), flag(True),
             flag(False), "requests after FE wake-up bytes are not recognised"),
    Mutation(f"{UART}.silent_on_error", (f"{COMMS_FRAMING}::test_error_replies",), flag(True),
             flag(False), "no abnormal reply: errors get silence"),
    Mutation(f"{UART}.wrong_control_bits", (f"{COMMS_FRAMING}::test_reply_frames_conform",), flag(True),
             flag(False), "normal replies claim follow-up frames (D5)"),
    Mutation(f"{UART}.broadcast_time_always_accepted", (f"{COMMS_CLOCK}::test_broadcast_time_refused_outside_rules",),
             flag(True), flag(False), "broadcast time sync taken outside the rules"),
)
MUTATIONS = (*MUTATIONS, *UART_MUTATIONS)


# ---------------------------------------------------------------- ESAM-backed security

SECURITY_AUTHENTICATION = "testplans/security/test_authentication.py"
SECURITY_PROTECTED = "testplans/security/test_protected.py"
SECURITY_RELAY = "testplans/security/test_relay.py"
SECURITY_SESSION = "testplans/security/test_session.py"
SECURITY_LOCKOUT = "testplans/security/test_lockout.py"
SECURITY = "twin.meter.security"



SECURITY_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{SECURITY}.mac_not_checked",
             (f"{SECURITY_PROTECTED}::test_tampered_mac_refused",
              f"{SECURITY_RELAY}::test_relay_unchanged_by_refused_commands"),
             flag(True), flag(False), "protected data taken whatever its MAC"),
    Mutation(f"{SECURITY}.replay_accepted",
             (f"{SECURITY_PROTECTED}::test_replayed_frame_refused",
              f"{SECURITY_LOCKOUT}::test_lockout_after_threshold_and_daily_reset"),
             flag(True), flag(False), "a replayed protected command is taken"),
    Mutation(f"{SECURITY}.session_never_expires", (f"{SECURITY_SESSION}::test_session_expires_on_the_clock",),
             flag(True), flag(False), "the session outlives its validity"),
    Mutation(f"{SECURITY}.lockout_disabled", (f"{SECURITY_LOCKOUT}::test_lockout_after_threshold_and_daily_reset",),
             flag(True), flag(False), "200 MAC errors do not suspend the meter"),
    Mutation(f"{SECURITY}.dispersion_not_checked",
             (f"{SECURITY_AUTHENTICATION}::test_wrong_dispersion_factor_rejected",),
             flag(True), flag(False), "another meter's keys open this one"),
    Mutation(f"{SECURITY}.deadline_not_checked", (f"{SECURITY_PROTECTED}::test_expired_deadline_refused",),
             flag(True), flag(False), "a command past its deadline is executed"),
    Mutation(f"{SECURITY}.weak_random", (f"{SECURITY_AUTHENTICATION}::test_random2_fresh_each_authentication",),
             flag(True), flag(False), "random2 repeats between authentications"),
)
MUTATIONS = (*MUTATIONS, *SECURITY_MUTATIONS)


# ---------------------------------------------------------------- power: outages, RTC on battery, battery

POWER_OUTAGE = "testplans/power/test_outage.py"
POWER_BATTERY = "testplans/power/test_battery.py"
POWER_TRANSIENTS = "testplans/power/test_transients.py"
POWER = "twin.meter.power"
_DIP_WITH_ENERGY = "50 % for 1 min"  # the dips program a meter that counts during a dip shows in



def _energy_lost(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # Five register steps lost at each power-down; the healthy meter loses nothing.
    return lambda meter: 5 * power_spec.REGISTER_RESOLUTION_KWH if violating else 0.0


def _rtc_ppm(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # 0.5 s/day is 5.8 ppm: outside runs at 1.75 times that, inside at half (each trimmed crystal adds ±0.1 ppm,
    # the ticks timed to 0.02 s at both ends of the 72 h).
    limit_ppm = power_spec.RTC_RATE_S_PER_DAY / 86400.0 * 1e6
    return lambda meter: limit_ppm * (1.75 if violating else 0.5)


def _alarm_threshold(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # Outside: alarms a fifth beyond the bracket late (the 'low' cell, at threshold - bracket within ±3 mV, reads
    # above that threshold and raises nothing; an alarm the bracket early is proven in tests/power); inside: 0.01 V
    # high, within the meter's measurement error.
    return lambda meter: power_spec.BATTERY_ALARM_V + (-1.2 * power_spec.BATTERY_BRACKET_V if violating else 0.01)


def _drain(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    return lambda meter: power_spec.MAX_DRAIN_UA * (1.5 if violating else 0.75)


def _dip_power(violating: bool | None) -> Callable[[spec.MeterTypeLike], float]:
    # Power that registers x (the critical value) over the 1 min dip, three times over or a third of it.
    def value(meter: spec.MeterTypeLike) -> float:
        seconds = power_spec.DIPS[_DIP_WITH_ENERGY].program.duration_s(50.0)
        watts_for_x = power_spec.critical_kwh(meter) * 3.6e6 / seconds
        return watts_for_x * (1.0 if violating is None else 3.0 if violating else 0.3)

    return value


def _slow_restart(violating: bool) -> Callable[[spec.MeterTypeLike], float]:
    # The meter answers this long after power returns (its own boot when that is longer): half the nameplate's
    # start-up time beyond it, or three quarters of it.
    return lambda meter: getattr(meter, "start_up_time_s", 5.0) * (1.5 if violating else 0.75)


POWER_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{POWER}.energy_lost_on_power_down", (f"{POWER_OUTAGE}::test_registers_unchanged_across_outage",),
             _energy_lost(True), _energy_lost(False), "the registers lose energy at each power-down",
             # Any loss is a defect; the registers resolve one step.
             boundary=lambda meter: power_spec.REGISTER_RESOLUTION_KWH),
    Mutation(f"{POWER}.no_power_down_event", (f"{POWER_OUTAGE}::test_power_down_event_recorded",),
             flag(True), flag(False), "power-downs are not logged"),
    Mutation(f"{POWER}.event_end_time_wrong", (f"{POWER_OUTAGE}::test_power_down_event_recorded",),
             flag(True), flag(False), "power-down records end at their start time"),
    Mutation(f"{POWER}.rtc_drift_ppm_on_battery", (f"{POWER_OUTAGE}::test_rtc_after_72h_outage",), _rtc_ppm(True),
             _rtc_ppm(False), "the clock drifts beyond 0.5 s/day on the battery",
             boundary=lambda meter: power_spec.RTC_RATE_S_PER_DAY / 86400.0 * 1e6),
    Mutation(f"{POWER}.battery_alarm_threshold_v", (f"{POWER_BATTERY}::test_battery_low_alarm_and_hysteresis",),
             _alarm_threshold(True), _alarm_threshold(False), "battery-low comes too late",
             boundary=lambda meter: power_spec.BATTERY_ALARM_V - power_spec.BATTERY_BRACKET_V,
             nominal=lambda meter: power_spec.BATTERY_ALARM_V),
    Mutation(f"{POWER}.battery_drain_ua", (f"{POWER_BATTERY}::test_battery_drain_without_mains",), _drain(True),
             _drain(False), "the battery would not last five years of outage",
             boundary=lambda meter: power_spec.MAX_DRAIN_UA),
    Mutation(f"{POWER}.counts_during_dip", (f"{POWER_TRANSIENTS}::test_voltage_dips_and_interruptions",),
             _dip_power(True), _dip_power(False), "energy registered during a voltage dip",
             boundary=_dip_power(None)),
    Mutation(f"{POWER}.slow_restart_s", (f"{POWER_OUTAGE}::test_meter_answers_within_start_up_time",),
             _slow_restart(True), _slow_restart(False), "the meter answers later than its start-up time",
             # The knob is the time the meter takes to answer (when longer than its own boot, on the twin 0.45..0.65
             # of the nameplate time): the limit is the nameplate's start-up time itself. The plan asks every
             # PROBE_REPLY_TIMEOUT_S (0.6 s), so 0.8 of it passes while a fifth of the start-up time exceeds that.
             boundary=lambda meter: getattr(meter, "start_up_time_s", 5.0)),
)
MUTATIONS = (*MUTATIONS, *POWER_MUTATIONS)


# ---------------------------------------------------------------- Bluetooth LE: the meter's BLE module

COMMS_BLE = "testplans/comms/test_ble.py"
BLE = "twin.meter.ble"



BLE_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{BLE}.drops_notifications",
             (f"{COMMS_BLE}::test_replies_longer_than_one_notification", f"{COMMS_FRAMING}::test_reply_frames_conform"),
             flag(True), flag(False), "a reply spanning several notifications loses one"),
    Mutation(f"{BLE}.wrong_service_uuid", (f"{COMMS_BLE}::test_advertising_and_service",), flag(True),
             flag(False), "the transparent UART sits under another service UUID"),
    Mutation(f"{BLE}.ignores_mtu", (f"{COMMS_BLE}::test_mtu_negotiation",), flag(True), flag(False),
             "notifications longer than the negotiated ATT MTU"),
    Mutation(f"{BLE}.duplicate_on_reconnect", (f"{COMMS_BLE}::test_reconnect_command_once",), flag(True),
             flag(False), "a command acts again after a reconnect"),
)
MUTATIONS = (*MUTATIONS, *BLE_MUTATIONS)


# ---------------------------------------------------------------- DL/T 698.45: the same firmware's second protocol

DLT698_FRAMES = "testplans/dlt698/test_frames.py"
DLT698_OBJECTS = "testplans/dlt698/test_objects.py"
DLT698_FREEZE = "testplans/dlt698/test_freeze.py"
DLT698_UPGRADE = "testplans/dlt698/test_upgrade.py"
DLT698 = "twin.meter.dlt698"


def _fixed(value: float) -> Callable[[spec.MeterTypeLike], float]:
    return lambda meter: value


def _freeze_late_limit_s(meter: spec.MeterTypeLike) -> float:
    # The plan times each record by its high-precision energy (00100400) against the meter's own register read
    # just after the moment, the moment placed by a located tick of the meter's clock: it allows the lab's
    # lateness and two 0.0001 kWh steps' time at Imax (the record's and the read's). It was 15 steps of the
    # 0.01 kWh register (about 41 s at 220 V, 60 A), all attribute 2 resolves; the limit the plan states changed
    # with it.
    step_s = dlt698_spec.PRECISE_RESOLUTION_KWH * 3.6e6 / (spec.phase_factor(meter) * meter.un_v * meter.imax_a)
    assert dlt698_spec.FREEZE_LATE.high is not None
    return dlt698_spec.FREEZE_LATE.high + 2 * step_s


# The knobs given as text (freeze_boundary, reports) are not numbers `rig mutate` can set; the DL/T 698.45 knob
# tests (tests/dlt698/test_dlt698_knobs.py) set them.
DLT698_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(f"{DLT698}.hcs_error", (f"{DLT698_FRAMES}::test_reply_frames_conform",), _fixed(1.0),
             _fixed(0.0), "698 replies carry a wrong HCS"),
    Mutation(f"{DLT698}.fcs_error", (f"{DLT698_FRAMES}::test_reply_frames_conform",), _fixed(1.0),
             _fixed(0.0), "698 replies carry a wrong FCS"),
    Mutation(f"{DLT698}.dar_wrong", (f"{DLT698_FRAMES}::test_refusals_name_the_reason",), _fixed(1.0),
             _fixed(0.0), "refusals answer DAR 255 instead of the reason"),
    Mutation(f"{DLT698}.energy_scaler", (f"{DLT698_OBJECTS}::test_forward_energy_agrees_with_reference",),
             _fixed(-3.0), _fixed(-2.0), "energy registers counted in another scaler than attribute 3 says"),
    # Outside: 5 min against the bench file's 15; inside: the bench file's own period.
    Mutation(f"{DLT698}.minute_freeze_period_min", (f"{DLT698_FREEZE}::test_freeze_objects_as_the_bench_file_says",
                                                    f"{DLT698_FREEZE}::test_minute_freeze_against_reference"),
             _fixed(5.0), _fixed(15.0), "minute freeze period not the bench file's"),
    # Outside: 1.5 times the limit (about 7.6 s); inside: 1 s late.
    Mutation(f"{DLT698}.freeze_late_s", (f"{DLT698_FREEZE}::test_minute_freeze_against_reference",
                                         f"{DLT698_FREEZE}::test_daily_freeze_across_midnight"),
             lambda meter: 1.5 * _freeze_late_limit_s(meter), _fixed(1.0),
             "freeze values taken after the freeze moment", boundary=_freeze_late_limit_s),
    # The upgrade defects are there or not: on outside, off (the healthy firmware) inside.
    Mutation(f"{DLT698}.accepts_corrupt_image", (f"{DLT698_UPGRADE}::test_spoiled_image_refused",), _fixed(1.0),
             _fixed(0.0), "the file-transfer check passes a corrupt or unsigned image"),
    Mutation(f"{DLT698}.loses_old_image_on_interruption", (f"{DLT698_UPGRADE}::test_power_loss_never_bricks",),
             _fixed(1.0), _fixed(0.0), "a power loss during the switch leaves the meter without an image"),
    Mutation(f"{DLT698}.version_not_updated", (f"{DLT698_UPGRADE}::test_signed_image_upgrades",
                                               f"{DLT698_UPGRADE}::test_power_loss_never_bricks"),
             _fixed(1.0), _fixed(0.0), "after an upgrade the meter reports the old software version"),
)
MUTATIONS = (*MUTATIONS, *DLT698_MUTATIONS)
