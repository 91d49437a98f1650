"""The bench file: a YAML document validated with pydantic, plus dotted command-line overrides.

Errors name the key path and the reason in one paragraph (`ConfigError`); nothing here opens a port.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import benches
from drivers.errors import RigError
from drivers.registry import DRIVERS_BY_ROLE

BENCHES_DIR = Path(benches.__file__).resolve().parent
DEFAULT_BENCH = BENCHES_DIR / "twin.yaml"
# The resource string that means "the embedded twin fills this in when it starts".
TWIN_RESOURCE = "twin"


class ConfigError(RigError):
    """The bench file or an override is invalid; the message names the key and the reason."""


# Bench files, answers files: a few kB. Reading stops here, so /dev/zero or a huge file is an error, not a hang.
MAX_INPUT_FILE_BYTES = 1024 * 1024

def parse_ambient(text: str) -> dict[str, float]:
    """`TEMP_C,RH_PCT` (e.g. `23.1,45`) -> {temperature_c, humidity_pct}; ConfigError naming what is wrong.

    The ranges are those of the operator's answers to the same questions (`rig.operator.TOPICS`)."""
    from rig.operator import TOPICS

    parts = str(text).split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 2:
        raise ConfigError(f"--ambient {text!r}: give TEMP_C,RH_PCT, e.g. 23.1,45")
    out = dict(zip(("temperature_c", "humidity_pct"), values, strict=True))
    for name, value in out.items():
        topic = TOPICS[f"ambient.{name}"]
        low = topic.low if topic.low is not None else -math.inf
        high = topic.high if topic.high is not None else math.inf
        if not low <= value <= high:
            raise ConfigError(f"--ambient {text!r}: {name} {value:g} {topic.unit} is outside {low:g}..{high:g}")
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


CLASSIC_CLASSES = ("2", "1", "0.5S", "0.2S")
LETTER_CLASSES = ("A", "B", "C", "D")


class MeterType(_Strict):
    """The nameplate of the meters under test (one type per bench run)."""

    scheme: Literal["classic", "letter"] = Field(
        description="classic: IEC 62053-21/22:2003 classes 2, 1, 0.5S, 0.2S; letter: 2020 / IR46 classes A-D"
    )
    accuracy_class: str = Field(description="accuracy class, e.g. '1' or 'B'")
    connection: Literal["direct", "ct"] = "direct"
    wiring: Literal["1P2W", "3P4W", "3P3W"] = "1P2W"
    un_v: float = Field(gt=0, description="reference voltage Un, V")
    ib_a: float = Field(gt=0, description="basic current Ib (direct) or nominal In (CT), A")
    imax_a: float = Field(gt=0, description="maximum current Imax, A")
    itr_a: float | None = Field(default=None, gt=0, description="transitional current, A (default 0.1 Ib / 0.05 In)")
    constant_imp_per_kwh: float = Field(gt=0, description="meter constant, imp/kWh")
    frequency_hz: float = Field(default=50.0, gt=0, description="reference frequency, Hz")
    start_up_time_s: float = Field(default=5.0, ge=0, description="time after power-up before the meter answers, s")
    min_logged_outage_s: float | None = Field(
        default=60.0, ge=0, description="shortest outage the meter logs as a power-down event, s (None: the meter "
        "type does not say; project reference power.md, check)")

    @field_validator("accuracy_class", mode="before")
    @classmethod
    def _class_as_text(cls, value: Any) -> Any:
        # `accuracy_class: 1` (unquoted YAML, or --set meter.accuracy_class=2) means the class named "1".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value:g}"
        return value

    @model_validator(mode="after")
    def _check(self) -> MeterType:
        allowed = CLASSIC_CLASSES if self.scheme == "classic" else LETTER_CLASSES
        if self.accuracy_class not in allowed:
            raise ValueError(
                f"accuracy_class {self.accuracy_class!r} is not a {self.scheme} class; use one of {', '.join(allowed)}"
            )
        if self.imax_a <= self.ib_a:
            raise ValueError(f"imax_a ({self.imax_a} A) must be above ib_a ({self.ib_a} A)")
        if self.itr_a is None:
            object.__setattr__(self, "itr_a", self.ib_a * (0.1 if self.connection == "direct" else 0.05))
        return self

    @property
    def transitional_current_a(self) -> float:
        """Itr, A (given or derived)."""
        assert self.itr_a is not None
        return self.itr_a

    @property
    def phase_factor(self) -> float:
        """m in the standards' formulas: 1 single-phase, 3 for 3P4W, sqrt(3) for 3P3W."""
        return {"1P2W": 1.0, "3P4W": 3.0, "3P3W": math.sqrt(3.0)}[self.wiring]

    @property
    def nameplate(self) -> str:
        """The usual nameplate text, e.g. `220 V 5(60) A 1200 imp/kWh class 1`."""
        return (
            f"{self.un_v:g} V {self.ib_a:g}({self.imax_a:g}) A {self.constant_imp_per_kwh:g} imp/kWh "
            f"class {self.accuracy_class}"
        )


# Upper bounds of the bench file's safety limits: a limit above these is a typo, not a bench (low-voltage
# meter benches: IEC 60038 ends low voltage at 1000 V AC; the largest direct-connected meters take 200 A).
SAFETY_CEILINGS = {"max_voltage_v": 1000.0, "max_current_a": 500.0}


class SafetyLimits(_Strict):
    """Set-points above these are refused before anything is sent to the source."""

    max_voltage_v: float = Field(gt=0, le=SAFETY_CEILINGS["max_voltage_v"], description="highest voltage, V")
    max_current_a: float = Field(gt=0, le=SAFETY_CEILINGS["max_current_a"], description="highest current, A")


class InstrumentConfig(_Strict):
    """One instrument of the bench: its role, driver, and where it is reached."""

    role: str
    driver: str
    resource: str = Field(description="VISA resource (TCPIP::host::port::SOCKET, ASRL...) or 'twin'")
    timeout_s: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _known_driver(self) -> InstrumentConfig:
        if self.role not in DRIVERS_BY_ROLE:
            raise ValueError(f"unknown role {self.role!r}; known roles: {', '.join(sorted(DRIVERS_BY_ROLE))}")
        known = DRIVERS_BY_ROLE[self.role]
        if self.driver not in known:
            raise ValueError(f"unknown driver {self.driver!r} for role {self.role!r}; known: {', '.join(known)}")
        return self


class SerialSettings(_Strict):
    """UART line settings of a meter's RS-485/UART port."""

    baud: int = 2400
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1


# ---------------------------------------------------------------- Bluetooth LE of a position (issue 8)

# Where the bench builder finds a position's BLE stack: 'bleak' is the OS's (BlueZ on Linux); 'twin' is the
# embedded twin's virtual controller (Twin.resolve turns it into twin-ble://N); 'bumble:<HCI transport>' a
# bumble central on an HCI transport (a served twin's tcp-client:127.0.0.1:PORT, or a USB dongle usb:0).
BLE_BACKEND_PREFIXES = ("twin-ble://", "bumble:")
_BLE_ADDRESS_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def ble_uuid(text: str) -> str:
    """A GATT UUID in bleak's form: 128-bit, lower case; 16- and 32-bit ones ('fff0') on the Bluetooth base."""
    value = str(text).strip().lower().removeprefix("0x")
    if re.fullmatch(r"[0-9a-f]{4}|[0-9a-f]{8}", value):
        return f"{int(value, 16):08x}-0000-1000-8000-00805f9b34fb"
    if not _UUID_RE.match(value):
        raise ValueError(f"{text!r} is not a UUID: give 4 or 8 hex digits ('fff0') or the 128-bit form")
    return value


class BleConfig(_Strict):
    """How to find a meter over Bluetooth LE and its transparent-UART GATT service (DL/T 645 frames)."""

    name: str | None = Field(None, description="advertised local name of the meter, e.g. 'MTR-000000000001'")
    address: str | None = Field(None, description="Bluetooth device address XX:XX:XX:XX:XX:XX (else found by name)")
    backend: str = Field(
        "bleak", description="'bleak' (the OS's Bluetooth stack), 'twin' (the embedded twin), or "
                             "'bumble:<HCI transport>' (a bumble central, e.g. a served twin's tcp-client:HOST:PORT)"
    )
    service_uuid: str = Field("fff0", description="the transparent-UART service (16-bit or 128-bit UUID)",
                              validate_default=True)
    write_uuid: str = Field("fff2", description="its characteristic the rig writes requests to", validate_default=True)
    notify_uuid: str = Field("fff1", description="its characteristic the meter notifies replies on",
                             validate_default=True)
    pairing: bool = Field(False, description="the meter requires pairing (encryption) before it takes requests")
    scan_timeout_s: float = Field(10.0, gt=0, description="bench time to look for the meter's advertising, s")
    connect_timeout_s: float = Field(10.0, gt=0, description="time the OS may take to connect, s")

    @field_validator("service_uuid", "write_uuid", "notify_uuid")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return ble_uuid(value)

    @field_validator("address")
    @classmethod
    def _ble_address(cls, value: str | None) -> str | None:
        if value is not None and not _BLE_ADDRESS_RE.match(value):
            raise ValueError(f"address {value!r} must be a Bluetooth address XX:XX:XX:XX:XX:XX")
        return value.upper() if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> BleConfig:
        if self.name is None and self.address is None:
            raise ValueError("give the meter's advertised 'name', its 'address', or both")
        if self.backend not in ("bleak", TWIN_RESOURCE) and not self.backend.startswith(BLE_BACKEND_PREFIXES):
            raise ValueError(f"backend {self.backend!r}: use 'bleak', 'twin' or 'bumble:<HCI transport>'")
        if self.service_uuid in (self.write_uuid, self.notify_uuid):  # write and notify may share one (HM-10)
            raise ValueError("service_uuid must differ from the write and notify characteristics' UUIDs")
        return self

    @property
    def label(self) -> str:
        """How messages name the meter's BLE side: its name, else its address."""
        return self.name or str(self.address)


_ADDRESS_RE = re.compile(r"^[0-9]{12}$")


# ---------------------------------------------------------------- SPI link of a position (issue 6)

# Where the bench builder finds a position's SPI master / capture; 'twin' is replaced by Twin.resolve.
SPI_MASTER_KINDS = ("spidev", TWIN_RESOURCE)
SPI_TWIN_URL_PREFIXES = ("twin-spi://", "twin+tcp://")
# Default scaling: URMS reads 2^21 counts at Un and IARMS 2^22 at Imax (headroom below 2^23).
URMS_COUNTS_AT_UN = 2**21
IARMS_COUNTS_AT_IMAX = 2**22


class SpiSignals(_Strict):
    """Names of the SPI signals in a logic-analyser capture, and the chip-select polarity."""

    clk: str = "clk"
    mosi: str = "mosi"
    miso: str = "miso"
    cs: str = "cs"
    cs_active_low: bool = True


class SpiPositionConfig(_Strict):
    """The SPI bus between a meter's metering chip and its management MCU, as the rig reaches it."""

    chip: Literal["RN8209"] = Field("RN8209", description="chip profile (register map) on the bus")
    master: str | None = Field(
        None, description="rig-driven SPI master to the chip: 'spidev' (/dev/spidev<bus>.<device>), 'twin', or none"
    )
    bus: int = Field(0, ge=0, description="spidev bus number")
    device: int = Field(0, ge=0, description="spidev chip-select number")
    speed_hz: int = Field(500_000, gt=0, description="SCLK of the bus, Hz (at most the chip's maximum)")
    capture: str | None = Field(
        None, description="VCD file or folder a logic analyser writes the bus into, or 'twin'; none: no sniffer"
    )
    decoder: Literal["builtin", "sigrok", "auto"] = Field(
        "builtin", description="VCD decoder: builtin, sigrok (sigrok-cli) or auto (sigrok-cli when installed)"
    )
    signals: SpiSignals = SpiSignals()
    kv_v_per_count: float | None = Field(
        None, gt=0, description="URMS scale Kv, V per count (default: Un reads 2^21 counts)"
    )
    ki_a_per_count: float | None = Field(
        None, gt=0, description="IARMS scale Ki, A per count (default: Imax reads 2^22 counts)"
    )

    @model_validator(mode="after")
    def _check(self) -> SpiPositionConfig:
        if self.master is None and self.capture is None:
            raise ValueError("give a 'master', a 'capture', or both (or leave the spi section out)")
        if self.master is not None and self.master not in SPI_MASTER_KINDS and not self.master.startswith(
            SPI_TWIN_URL_PREFIXES
        ):
            raise ValueError(f"master {self.master!r}: use 'spidev' (with bus and device) or 'twin'")
        from drivers.spi.rn8209 import RN8209

        if self.speed_hz > RN8209.max_clock_hz:
            raise ValueError(
                f"speed_hz {self.speed_hz} Hz is above the {self.chip}'s {RN8209.max_clock_hz} Hz maximum"
            )
        return self

    def kv(self, meter: MeterType) -> float:
        """URMS scale, V per count (given, or derived from Un)."""
        return self.kv_v_per_count if self.kv_v_per_count is not None else meter.un_v / URMS_COUNTS_AT_UN

    def ki(self, meter: MeterType) -> float:
        """IARMS scale, A per count (given, or derived from Imax)."""
        return self.ki_a_per_count if self.ki_a_per_count is not None else meter.imax_a / IARMS_COUNTS_AT_IMAX


class UartTapConfig(_Strict):
    """A UART adapter tapping the line between the management and expansion modules (read-only)."""

    serial: str = Field(description="pyserial URL or device path of the adapter, or 'twin' ('twin+pty': a pty)")
    line: SerialSettings = Field(SerialSettings(baud=9600), description="line settings of the tapped link")


_PASSWORD_RE = re.compile(r"^[0-9A-Fa-f]{2}[0-9]{6}$")


class PositionConfig(_Strict):
    """One meter position of the rack: its meter address, comms ports and pulse input."""

    name: str | None = None
    address: str = Field(description="meter address, 12 decimal digits as on the nameplate")
    serial: str | None = Field(default=None, description="pyserial URL or device path, or 'twin'")
    line: SerialSettings = SerialSettings()
    ble: BleConfig | None = None
    pulse_channel: int = Field(ge=1, description="error-calculator channel of the reference standard")
    expansion_tap: UartTapConfig | None = Field(
        None, description="UART adapter on the management-expansion module link (issue 5), or none"
    )
    write_password: str = Field(
        "02000000", description="level (2 hex digits) and 6-digit password of DL/T 645 writes (14H), e.g. '02000000'"
    )
    spi: SpiPositionConfig | None = Field(None, description="the metering chip's SPI bus: master and/or capture")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS_RE.match(value):
            raise ValueError(f"address {value!r} must be 12 decimal digits, e.g. '000000000001'")
        return value

    @field_validator("write_password")
    @classmethod
    def _password(cls, value: str) -> str:
        if not _PASSWORD_RE.match(value):  # the value is a password: never repeated in the message
            raise ValueError("write_password must be a level (2 hex digits) and 6 digits, e.g. '02000000'")
        return value


# `keys.esam_master`: the ESAM master key of the meters (issue 7); on the twin, set up by the twin itself.
ESAM_MASTER_KEY = "esam_master"


class KeyRef(_Strict):
    """Key material by reference: a file path or an environment variable, never the key itself."""

    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one(self) -> KeyRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env' (the key itself never goes in a bench file)")
        return self

    def read(self) -> bytes:
        """The key bytes (hex text in the file or variable); ConfigError names the reference, not the key."""
        if self.env is not None:
            text = os.environ.get(self.env)
            if text is None:
                raise ConfigError(f"key environment variable {self.env} is not set")
            where = f"environment variable {self.env}"
        else:
            assert self.file is not None
            try:
                text = self.file.read_text()
            except OSError as exc:
                raise ConfigError(f"key file {self.file} cannot be read: {exc.strerror}") from None
            where = f"key file {self.file}"
        try:
            return bytes.fromhex(text.strip())
        except ValueError:
            raise ConfigError(f"{where} does not hold hex text") from None


# ---------------------------------------------------------------- the twin's section: every knob


def knob(default: Any, description: str, breaks: str, **constraints: Any) -> Any:
    """A defect knob: a pydantic field whose metadata says what it breaks (listed by `rig twin knobs`)."""
    return Field(default, description=description, json_schema_extra={"breaks": breaks}, **constraints)


class MeteringKnobs(_Strict):
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


class SpiKnobs(_Strict):
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


class UartKnobs(_Strict):
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


class SecurityKnobs(_Strict):
    """Defects of the management module's ESAM-backed security (issue 7): the ESAM and the MCU's handling."""

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


class BleKnobs(_Strict):
    """Defects of the management module's Bluetooth LE side: the transparent-UART module (issue 8)."""

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


class PowerKnobs(_Strict):
    """Defects and realism of the meter's power side (issue 9): supply, power-down handling, RTC on the battery,
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
        1.5, "rate error of the RTC while it runs on the battery, ppm (each meter's crystal adds ±0.5 ppm)",
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
    slow_restart_s: float = knob(0.0, "extra time after power returns before the meter answers, s",
                                 "meter answers within its start-up time", ge=0)


class MeterKnobs(_Strict):
    """Every defect knob of one meter, by module."""

    metering: MeteringKnobs = MeteringKnobs()
    uart: UartKnobs = UartKnobs()
    spi: SpiKnobs = SpiKnobs()
    security: SecurityKnobs = SecurityKnobs()  # ESAM-backed sessions (issue 7)
    ble: BleKnobs = BleKnobs()  # the Bluetooth LE module (issue 8)
    power: PowerKnobs = PowerKnobs()  # supply, power-down, RTC on battery, clock battery (issue 9)


class SourceTwin(_Strict):
    """The twin's phantom-load power source."""

    idn: str = "Meter HIL Twin,PhantomSource PS-1,TW0001,0.1"
    max_voltage_v: float = Field(300.0, gt=0, description="output range of the source, V")
    max_current_a: float = Field(120.0, gt=0, description="output range of the source, A")
    amplitude_noise_pct: float = Field(0.005, ge=0, description="output amplitude noise (1 sigma), %")
    latency_s: float = Field(0.002, ge=0, description="bench time a SCPI command takes, s")


class ReferenceTwin(_Strict):
    """The twin's reference standard meter and its error calculators."""

    idn: str = "Meter HIL Twin,ReferenceStandard RS-3,TW0002,0.1"
    calibration_certificate: str = "TWIN-CAL-0001"
    calibration_due: dt.date = dt.date(2099, 12, 31)
    uncertainty_pct: float = Field(0.01, ge=0, description="the reference's own error (1 sigma, redrawn per second), %")
    channels: int = Field(6, ge=1, description="number of error calculators")
    latency_s: float = Field(0.002, ge=0, description="bench time a SCPI command takes, s")


# ---------------------------------------------------------------- bench faults (issue 11)

FAULT_KINDS = ("scpi_drop", "scpi_delay", "scpi_garble", "scpi_error_queue", "serial_vanish", "serial_drop",
               "serial_flip", "ble_drop", "reference_reset")
_FAULT_TARGETS = {"scpi_drop": "instrument", "scpi_delay": "instrument", "scpi_garble": "instrument",
                  "scpi_error_queue": "instrument", "reference_reset": "reference", "serial_vanish": "position",
                  "serial_drop": "position", "serial_flip": "position", "ble_drop": "position"}


class FaultSpec(_Strict):
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
        want = _FAULT_TARGETS[self.kind]
        if want == "instrument" and self.target not in ("source", "reference"):
            raise ValueError(f"{self.kind}: target {self.target!r} must be 'source' or 'reference'")
        if want == "reference" and self.target != "reference":
            raise ValueError(f"{self.kind}: target {self.target!r} must be 'reference'")
        if want == "position" and not self.target.isdigit():
            raise ValueError(f"{self.kind}: target {self.target!r} must be a position index (0-based), e.g. '0'")
        return self


class FaultsConfig(_Strict):
    """`twin.faults`: bench faults injected below the transports (in the twin's servers), on the virtual clock."""

    schedule: list[FaultSpec] = Field(default_factory=list, description="faults: kind, target, at_s, duration_s")
    delay_s: float = Field(5.0, gt=0, description="scpi_delay: bench time a delayed reply takes, s")


class TwinConfig(_Strict):
    """The `twin:` section: seed, instruments, and defect knobs for all meters or one position."""

    seed: int = 1
    epoch: dt.datetime = Field(dt.datetime(2026, 1, 1, 8, 0, 0), description="calendar time at bench time 0")
    source: SourceTwin = SourceTwin()
    reference: ReferenceTwin = ReferenceTwin()
    faults: FaultsConfig = FaultsConfig()  # bench faults (issue 11)
    meter: MeterKnobs = MeterKnobs()
    positions: dict[int, dict[str, Any]] = Field(
        default_factory=dict, description="per-position overrides of `meter` knobs, by 0-based position index"
    )

    def knobs_for(self, index: int) -> MeterKnobs:
        """The knobs of position `index`: `meter` with `positions.<index>` merged over it."""
        override = self.positions.get(index)
        if not override:
            return self.meter
        merged = _deep_merge(self.meter.model_dump(), override)
        try:
            return MeterKnobs.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, prefix=f"twin.positions.{index}")) from None


class RunPolicy(_Strict):
    """`run:`: how the rig treats bench faults (an instrument or link failing, never the meter)."""

    on_bench_fault: Literal["continue", "stop"] = Field(
        "continue", description="after a point fails for a bench fault: go on with the next, or stop (resume later)"
    )
    retry_attempts: int = Field(3, ge=1, le=10, description="tries of one instrument operation before a bench fault")
    retry_backoff_s: float = Field(0.5, ge=0, description="bench time before the second try, doubled each try, s")


class BenchConfig(_Strict):
    """A whole bench: instruments, positions, meter type, safety limits, keys, and the twin."""

    name: str
    description: str = ""
    clock: str = Field(
        "wall", description="'wall' on a bench; 'twin' for the embedded twin; 'twin+tcp://HOST:PORT' for a served twin"
    )
    meter: MeterType
    safety: SafetyLimits
    instruments: list[InstrumentConfig]
    positions: list[PositionConfig] = Field(min_length=1)
    keys: dict[str, KeyRef] = Field(default_factory=dict)
    twin: TwinConfig | None = None
    results_db: str | None = Field(
        None, description="SQLAlchemy URL of the results journal (default: SQLite in the run folder)"
    )
    run: RunPolicy = Field(default_factory=lambda: RunPolicy(), description="what a run does about bench faults")

    @model_validator(mode="after")
    def _consistent(self) -> BenchConfig:
        roles = [i.role for i in self.instruments]
        for role in ("source", "reference"):
            if roles.count(role) != 1:
                raise ValueError(f"instruments: need exactly one with role {role!r}, found {roles.count(role)}")
        for field, values in (
            ("address", [p.address for p in self.positions]),
            ("pulse_channel", [str(p.pulse_channel) for p in self.positions]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"positions: {field} must be unique, repeated: {', '.join(dupes)}")
        uses_twin = any(i.resource == TWIN_RESOURCE for i in self.instruments) or self.clock == "twin"
        if uses_twin and self.twin is None:
            raise ValueError("resources or clock say 'twin' but there is no 'twin:' section")
        if self.clock not in ("wall", "twin") and not self.clock.startswith("twin+tcp://"):
            raise ValueError(f"clock {self.clock!r}: use 'wall', 'twin' or 'twin+tcp://HOST:PORT'")
        if self.twin is not None:
            for index in self.twin.positions:
                if not 0 <= index < len(self.positions):
                    count = len(self.positions)
                    raise ValueError(f"twin.positions.{index}: there are only {count} positions (0-based)")
            for n, spec in enumerate(self.twin.faults.schedule):
                if _FAULT_TARGETS[spec.kind] == "position" and int(spec.target) >= len(self.positions):
                    raise ValueError(f"twin.faults.schedule.{n}.target: {spec.kind} on position {spec.target}, but "
                                     f"the bench has {len(self.positions)} position(s), 0-based")
        return self

    @field_validator("keys", mode="before")
    @classmethod
    def _keys_are_references(cls, value: Any) -> Any:
        if isinstance(value, dict):
            inline = sorted(str(name) for name, ref in value.items() if not isinstance(ref, dict))
            if inline:
                raise ValueError(f"{', '.join(inline)} written as a value: give a reference, {{file: PATH}} or "
                                 "{env: VARIABLE} (a key never goes in a bench file or --set; the value is not shown)")
        return value

    def instrument(self, role: str) -> InstrumentConfig:
        """The instrument with `role`."""
        return next(i for i in self.instruments if i.role == role)

    def position_name(self, index: int) -> str:
        """A position's display name (its `name`, else P1, P2, ...)."""
        return self.positions[index].name or f"P{index + 1}"


# ---------------------------------------------------------------- loading and overrides


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _secret_path(loc: tuple[Any, ...]) -> bool:
    """Key material and passwords: an error names the key path, never the value given there."""
    return bool(loc) and (loc[0] == "keys" or "write_password" in loc)


def _describe(exc: ValidationError, prefix: str = "", source: str = "") -> str:
    """One paragraph naming each bad key path and why."""
    parts = []
    for err in exc.errors():
        path = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see README 'Bench file')"
        shows_input = (err["type"] not in ("missing", "extra_forbidden") and not isinstance(err["input"], dict | list)
                       and not _secret_path(((prefix,) if prefix else ()) + tuple(err["loc"])))
        got = f" (got {err['input']!r})" if shows_input else ""
        parts.append(f"{path or '(top level)'}: {msg}{got}")
    where = f"{source}: " if source else ""
    return f"{where}invalid bench file: " + "; ".join(parts) + "."


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into a key path and a YAML-scalar value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        # Shown up to the first space or colon only: `keys.esam_master: 0011...` must not echo the key.
        shown = re.split(r"[\s:]", text.strip(), maxsplit=1)[0]
        shown += "..." if shown != text.strip() else ""
        raise ConfigError(f"override {shown!r} must look like key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"override {key.strip()}: the value is nested too deeply to be a bench setting") from None
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `value` at `path` in the raw bench document, creating mappings and indexing lists."""
    node: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {'.'.join(path)}: {where} is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(path)}: {'.'.join(path[:depth])} is a value, not a mapping")
        # twin.positions is keyed by integer index.
        in_twin_positions = path[0] == "twin" and path[:depth][-1:] == ["positions"]
        key: Any = int(part) if part.isdigit() and in_twin_positions else part
        if last:
            node[key] = value
        else:
            node = node.setdefault(key, {})


def load_bench(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> BenchConfig:
    """Read, override and validate a bench file (default: the embedded twin bench)."""
    source = Path(path) if path is not None else DEFAULT_BENCH
    text = read_text_capped(source, "bench file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"bench file {source} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"bench file {source} is nested too deeply to be a bench file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"bench file {source} must be a YAML mapping at the top level")
    for text_override in overrides:
        key_path, value = parse_override(text_override)
        apply_override(data, key_path, value)
    try:
        return validate_bench(data, source=str(source))
    except RecursionError:
        raise ConfigError(f"bench file {source}: a value is nested too deeply to be a bench setting") from None


def read_text_capped(path: Path, what: str) -> str:
    """A small input file's text; ConfigError (naming `what` and the path) when it cannot be read, is larger
    than MAX_INPUT_FILE_BYTES (/dev/zero, a log given by mistake) or is not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_INPUT_FILE_BYTES // 1024} KiB: is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # found by fuzzing: a damaged file is not a traceback
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}): is it the right file?") from None


def validate_bench(data: dict[str, Any], source: str = "") -> BenchConfig:
    """Validate a bench document; ConfigError on any problem."""
    try:
        bench = BenchConfig.model_validate(data)
        if bench.twin is not None:
            for index in range(len(bench.positions)):
                bench.twin.knobs_for(index)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source=source)) from None
    return bench


def dump_bench(bench: BenchConfig) -> str:
    """The bench as YAML text (what `rig twin serve` prints)."""
    data = bench.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)
