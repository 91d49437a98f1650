"""`twin:` of the bench file: the software twin's seed, instruments, defect knobs and scheduled bench faults.

Pure data (pydantic models): the twin reads them, and so do `rig twin knobs`, the bench file's validation and
the plans' mutation catalogue; nothing here imports the twin itself."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from rig.config.base import ConfigError, StrictModel, deep_merge, describe_errors
from rig.config.climate import ClimateKnobs
from rig.config.dlt698 import Dlt698Knobs
from rig.config.harmonics import HarmonicKnobs
from rig.config.registers import RegisterKnobs


def knob(default: Any, description: str, breaks: str, **constraints: Any) -> Any:
    """A defect knob: a pydantic field whose metadata says what it breaks (listed by `rig twin knobs`)."""
    return Field(default, description=description, json_schema_extra={"breaks": breaks}, **constraints)


class MeteringKnobs(StrictModel):
    """Defects and realism of the metering module (chip, pulse output). Healthy defaults are not ideal."""

    gain_error_pct: float = knob(0.04, "constant error of the registered energy, %", "basic error at every load point")
    phase_error_deg: float = knob(
        0.005, "phase error of the current channel, degrees (shows at PF != 1)", "basic error at 0.5L / 0.8C"
    )
    start_current_a: float | None = knob(
        None, "current below which nothing registers, A (default: 0.05 % of Ib, a typical factory setting)",
        "starting current", ge=0,
    )
    creep_w: float = knob(0.0, "power registered with the current circuit open, W", "no-load (creep)", ge=0)
    constant_error_pct: float = knob(0.0, "pulse output rate off from the register, %", "meter constant")
    voltage_sensitivity_pct_per_pct: float = knob(
        0.004, "change of error per % of voltage deviation, %/%", "voltage influence"
    )
    frequency_sensitivity_pct_per_pct: float = knob(
        0.01, "change of error per % of frequency deviation, %/%", "frequency influence"
    )
    noise_pct: float = knob(
        0.02, "random error redrawn every second of bench time (1 sigma), %", "repeatability", ge=0
    )
    offset_power_w: float = knob(
        0.0, "fixed power the power channel adds whenever the meter registers (an offset), W: its error grows as "
        "the current falls", "basic error at low current (0.05-0.1 Ib)"
    )
    nonlinearity_pct_per_decade: float = knob(
        0.0, "change of error per decade of current, % (error = k * log10(I / Ib)): a non-linear front end",
        "basic error at the ends of the range (0.05 Ib, Imax)"
    )


class SpiKnobs(StrictModel):
    """Defects and realism of the metering chip's SPI side and of the management MCU that polls it."""

    write_protect_ignored: bool = knob(
        False, "the chip takes register writes while write-protected (0xEA lock ignored)", "SPI write protection"
    )
    rdata_not_updated: bool = knob(False, "RData keeps its old value after a read", "SPI RData echo")
    wrong_device_id: bool = knob(False, "the chip reports a DeviceID other than the RN8209's", "SPI DeviceID")
    msb_last: bool = knob(
        False, "the chip sends and takes register data least significant byte first", "SPI byte order, DeviceID"
    )
    energy_scale_error_pct: float = knob(
        0.0, "error of the chip's energy registers against the energy it measures, %", "chip energy vs reference"
    )
    mcu_poll_interval_s: float = knob(
        1.0, "period at which the management MCU polls energy, power, Vrms and Irms, s", "MCU polling rate", gt=0
    )
    mcu_poll_jitter_s: float = knob(0.002, "jitter of the MCU's polling timer (1 sigma), s", "MCU polling rate", ge=0)
    cs_glitch: float = knob(
        0.0, "fraction of the MCU's SPI frames in which CS is released mid-frame", "SPI frame structure", ge=0, le=1
    )
    rms_noise_pct: float = knob(
        0.02, "random error of the chip's Vrms/Irms, redrawn every second (1 sigma), %", "chip Vrms/Irms", ge=0
    )


class UartKnobs(StrictModel):
    """Defects and realism of the management module's DL/T 645 UART (RS-485 port and expansion link)."""

    checksum_error: bool = knob(False, "replies carry a wrong checksum (CS + 1)", "frame conformance (checksum)")
    address_high_byte_first: bool = knob(
        False, "the address field high byte first both ways: replies carry it so, and requests addressed the "
        "standard way are refused (other error)", "frame conformance (address order)"
    )
    no_data_offset: bool = knob(
        False, "reply data goes out without the +33H offset", "frame conformance (+33H), every reading"
    )
    reply_delay_s: float = knob(
        0.08, "mean delay from the end of a request to the reply, s (each reply adds seeded jitter of ±0.04 s)",
        "reply latency (20..500 ms)", ge=0,
    )
    ignores_preamble: bool = knob(
        False, "a request that starts with FE wake-up bytes is not recognised", "preamble handling"
    )
    silent_on_error: bool = knob(
        False, "errors (no such data, unauthorised) get silence instead of an abnormal reply", "error replies"
    )
    wrong_control_bits: bool = knob(
        False, "normal replies set D5 (follow-up frames exist) although none follow", "frame conformance (control)"
    )
    broadcast_time_always_accepted: bool = knob(
        False, "broadcast time is applied whatever the refusal rules say (shift, midnight, billing, daily quota)",
        "broadcast time refused outside the rules",
    )


class SecurityKnobs(StrictModel):
    """Defects of the management module's ESAM-backed security: the ESAM and the MCU's handling."""

    mac_not_checked: bool = knob(
        False, "the ESAM takes protected data whatever its MAC", "tampered MAC refused and counted"
    )
    replay_accepted: bool = knob(
        False, "the ESAM takes a protected command whose counter is not above the last one accepted",
        "replayed frame refused",
    )
    session_never_expires: bool = knob(
        False, "an identity authentication stays open past its validity", "session expiry on the clock"
    )
    lockout_disabled: bool = knob(
        False, "200 MAC errors in a day do not suspend the meter", "lockout after the threshold"
    )
    dispersion_not_checked: bool = knob(
        False, "an identity authentication with another meter's dispersion factor is taken",
        "wrong dispersion factor rejected",
    )
    deadline_not_checked: bool = knob(
        False, "a remote-control command past its deadline is executed", "expired deadline refused (0x10)"
    )
    weak_random: bool = knob(
        False, "the ESAM's random2 repeats from one authentication to the next", "fresh random2 per authentication"
    )


class BleKnobs(StrictModel):
    """Defects of the management module's Bluetooth LE side: the transparent-UART module."""

    drops_notifications: bool = knob(
        False, "the module loses the second notification of every reply that spans several",
        "reply reassembly over BLE (every reading over BLE)",
    )
    wrong_service_uuid: bool = knob(
        False, "the transparent-UART characteristics sit under another service UUID than the specification's",
        "BLE service discovery (every exchange over BLE)",
    )
    ignores_mtu: bool = knob(
        False, "each reply goes out in one notification, longer than the negotiated ATT MTU allows", "BLE MTU"
    )
    duplicate_on_reconnect: bool = knob(
        False, "after a reconnect the module hands the MCU its last request again (the meter acts twice)",
        "a command sent once acts once across a BLE reconnect",
    )


class PowerKnobs(StrictModel):
    """Defects and realism of the meter's power side: supply, power-down handling, RTC on the battery,
    the clock battery."""

    energy_lost_on_power_down: float = knob(
        0.0, "energy the forward register loses at each power-down that resets the MCU, kWh (a failing "
        "power-down save: the register restarts from an older copy)", "energy registers unchanged across an outage",
        ge=0,
    )
    no_power_down_event: bool = knob(False, "power-downs are not logged (count and records stay)",
                                     "power-down event count and records")
    event_end_time_wrong: bool = knob(False, "a power-down record is closed with its start time, not the "
                                      "power-up time", "power-down event records (end time)")
    rtc_drift_ppm_on_battery: float = knob(
        1.5, "rate error of the RTC while it runs on the battery, ppm (each meter's trimmed crystal adds ±0.1 ppm)",
        "RTC error after a 72 h outage (0.5 s/day)",
    )
    battery_alarm_threshold_v: float = knob(
        2.10, "battery voltage below which the meter raises battery-low (status word 1 bit 2, Err-04), V; it "
        "clears 0.20 V above", "battery-low alarm at the threshold", gt=0,
    )
    battery_drain_ua: float = knob(
        6.0, "current the meter draws from the clock battery without mains (MCU asleep, RTC running), µA",
        "battery drain without mains (5 years of outage on 1.2 Ah)", ge=0,
    )
    counts_during_dip: float = knob(
        0.0, "power the meter registers while the voltage is dipped (above 0 and below 90 % Un), W (a front end "
        "that counts its own transient)", "voltage dips: register change and pulses", ge=0,
    )
    slow_restart_s: float = knob(0.0, "time after power returns before the meter answers, s, when longer than its "
                                 "own boot (0.45..0.65 of the nameplate's start-up time)",
                                 "meter answers within its start-up time", ge=0)


class MeterKnobs(StrictModel):
    """Every defect knob of one meter, by module."""

    metering: MeteringKnobs = MeteringKnobs()
    uart: UartKnobs = UartKnobs()
    spi: SpiKnobs = SpiKnobs()
    security: SecurityKnobs = SecurityKnobs()  # ESAM-backed sessions
    ble: BleKnobs = BleKnobs()  # the Bluetooth LE module
    power: PowerKnobs = PowerKnobs()  # supply, power-down, RTC on battery, clock battery
    dlt698: Dlt698Knobs = Dlt698Knobs()  # the DL/T 698.45 server on the same ports
    climate: ClimateKnobs = ClimateKnobs()  # temperature coefficient, temperature sensor, RTC on mains
    harmonics: HarmonicKnobs = HarmonicKnobs()  # the front end under harmonic content
    registers: RegisterKnobs = RegisterKnobs()  # identity, direction, tariffs, display, event log, relay


class SourceTwin(StrictModel):
    """The twin's phantom-load power source."""

    idn: str = "Meter HIL Twin,PhantomSource PS-1,TW0001,0.1"
    max_voltage_v: float = Field(300.0, gt=0, description="output range of the source, V")
    max_current_a: float = Field(120.0, gt=0, description="output range of the source, A")
    amplitude_noise_pct: float = Field(0.005, ge=0, description="output amplitude noise (1 sigma), %")
    latency_s: float = Field(0.002, ge=0, description="bench time a SCPI command takes, s")


class ReferenceTwin(StrictModel):
    """The twin's reference standard meter and its error calculators."""

    idn: str = "Meter HIL Twin,ReferenceStandard RS-3,TW0002,0.1"
    calibration_certificate: str = "TWIN-CAL-0001"
    calibration_due: dt.date = dt.date(2099, 12, 31)
    uncertainty_pct: float = Field(0.01, ge=0, description="the reference's own error (1 sigma, redrawn per second), %")
    channels: int = Field(6, ge=1, description="number of error calculators")
    latency_s: float = Field(0.002, ge=0, description="bench time a SCPI command takes, s")


# ---------------------------------------------------------------- bench faults

FAULT_KINDS = ("scpi_drop", "scpi_delay", "scpi_garble", "scpi_error_queue", "serial_vanish", "serial_drop",
               "serial_flip", "ble_drop", "reference_reset")
FAULT_TARGETS = {"scpi_drop": "instrument", "scpi_delay": "instrument", "scpi_garble": "instrument",
                  "scpi_error_queue": "instrument", "reference_reset": "reference", "serial_vanish": "position",
                  "serial_drop": "position", "serial_flip": "position", "ble_drop": "position"}


class FaultSpec(StrictModel):
    """One scheduled bench fault of the twin, on its virtual clock: from `at_s` for `duration_s`."""

    kind: Literal["scpi_drop", "scpi_delay", "scpi_garble", "scpi_error_queue", "serial_vanish", "serial_drop",
                  "serial_flip", "ble_drop", "reference_reset"] = Field(
        description="scpi_drop (connection reset), scpi_delay (reply later than the timeout), scpi_garble, "
                    "scpi_error_queue (device errors fill the queue), serial_vanish (port gone, then back), "
                    "serial_drop / serial_flip (bytes lost / bits flipped on the line), ble_drop, "
                    "reference_reset (the reference standard restarts: calculators and settings lost)")
    target: str = Field(description="'source' or 'reference' (scpi_*, reference_reset), or a position index (0-based)")
    at_s: float = Field(ge=0, description="bench time the fault starts, s")
    duration_s: float = Field(0.0, ge=0, description="how long it lasts, s (0: one event / one message)")
    rate: float = Field(1.0, gt=0, le=1, description="serial_drop / serial_flip: fraction of bytes hit")

    @model_validator(mode="after")
    def _target(self) -> FaultSpec:
        want = FAULT_TARGETS[self.kind]
        if want == "instrument" and self.target not in ("source", "reference"):
            raise ValueError(f"{self.kind}: target {self.target!r} must be 'source' or 'reference'")
        if want == "reference" and self.target != "reference":
            raise ValueError(f"{self.kind}: target {self.target!r} must be 'reference'")
        if want == "position" and not self.target.isdigit():
            raise ValueError(f"{self.kind}: target {self.target!r} must be a position index (0-based), e.g. '0'")
        return self


class FaultsConfig(StrictModel):
    """`twin.faults`: bench faults injected below the transports (in the twin's servers), on the virtual clock."""

    schedule: list[FaultSpec] = Field(default_factory=list, description="faults: kind, target, at_s, duration_s")
    delay_s: float = Field(5.0, gt=0, description="scpi_delay: bench time a delayed reply takes, s")


class TwinConfig(StrictModel):
    """The `twin:` section: seed, instruments, and defect knobs for all meters or one position."""

    seed: int = 1
    epoch: dt.datetime = Field(dt.datetime(2026, 1, 1, 8, 0, 0), description="calendar time at bench time 0")
    source: SourceTwin = SourceTwin()
    reference: ReferenceTwin = ReferenceTwin()
    faults: FaultsConfig = FaultsConfig()  # bench faults: the instruments and ports failing, not the meter
    meter: MeterKnobs = MeterKnobs()
    positions: dict[int, dict[str, Any]] = Field(
        default_factory=dict, description="per-position overrides of `meter` knobs, by 0-based position index"
    )

    def knobs_for(self, index: int) -> MeterKnobs:
        """The knobs of position `index`: `meter` with `positions.<index>` merged over it."""
        override = self.positions.get(index)
        if not override:
            return self.meter
        merged = deep_merge(self.meter.model_dump(), override)
        try:
            return MeterKnobs.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc, prefix=f"twin.positions.{index}")) from None
