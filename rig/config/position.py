"""`positions:` of the bench file: one meter position each, its UART, Bluetooth LE, SPI and tap links.

A new per-position setting goes on `PositionConfig` here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from rig.config.base import TWIN_RESOURCE, StrictModel

if TYPE_CHECKING:
    from rig.config.meter import MeterType


class SerialSettings(StrictModel):
    """UART line settings of a meter's RS-485/UART port."""

    baud: int = 2400
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1


# ---------------------------------------------------------------- Bluetooth LE of a position

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


class BleConfig(StrictModel):
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


# ---------------------------------------------------------------- SPI link of a position

# Where the bench builder finds a position's SPI master / capture; 'twin' is replaced by Twin.resolve.
SPI_MASTER_KINDS = ("spidev", TWIN_RESOURCE)
SPI_TWIN_URL_PREFIXES = ("twin-spi://", "twin+tcp://")
# Default scaling: URMS reads 2^21 counts at Un and IARMS 2^22 at Imax (headroom below 2^23).
URMS_COUNTS_AT_UN = 2**21
IARMS_COUNTS_AT_IMAX = 2**22


class SpiSignals(StrictModel):
    """Names of the SPI signals in a logic-analyser capture, and the chip-select polarity."""

    clk: str = "clk"
    mosi: str = "mosi"
    miso: str = "miso"
    cs: str = "cs"
    cs_active_low: bool = True


class SpiPositionConfig(StrictModel):
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


class UartTapConfig(StrictModel):
    """A UART adapter tapping the line between the management and expansion modules (read-only)."""

    serial: str = Field(description="pyserial URL or device path of the adapter, or 'twin' ('twin+pty': a pty)")
    line: SerialSettings = Field(SerialSettings(baud=9600), description="line settings of the tapped link")


_PASSWORD_RE = re.compile(r"^[0-9A-Fa-f]{2}[0-9]{6}$")


_SERVER_ADDRESS_RE = re.compile(r"^([0-9A]{2}){1,16}$")


class UpgradeImage(StrictModel):
    """A vendor-signed firmware image the lab received from the manufacturer, with the version and checksum it
    declares; 'twin' has the twin hand over one it signed itself (Twin.resolve fills in all three)."""

    image: str = Field(description="path of the signed image file, or 'twin'")
    version: str | None = Field(None, min_length=1, description="software version the image declares")
    checksum: str | None = Field(None, min_length=1, description="checksum the manufacturer declares for it")

    @model_validator(mode="after")
    def _check(self) -> UpgradeImage:
        if self.image == TWIN_RESOURCE:
            return self
        if self.version is None or self.checksum is None:
            raise ValueError(f"upgrade image {self.image}: give the 'version' and 'checksum' the manufacturer "
                             "declares for it")
        if not Path(self.image).is_file():
            raise ValueError(f"upgrade image {self.image} is not a readable file")
        return self


class Dlt698Config(StrictModel):
    """How the rig addresses the position's meter in DL/T 698.45 (as master station)."""

    server_address: str | None = Field(
        None, description="server address (SA) as on the nameplate, 2..32 digits; default: the position's address")
    client_address: int = Field(0x10, ge=0, le=255, description="client address (CA) the rig sends from (10H)")
    logical_address: int = Field(0, ge=0, le=3, description="logical address of the meter's server (0: the meter)")
    minute_freeze_period_min: int = Field(15, ge=1, le=60, description="the meter's minute freeze period (5002), min")
    minute_freeze_depth: int = Field(672, ge=1, description="records the minute freeze keeps (5002 attribute 3)")
    daily_freeze_depth: int = Field(62, ge=1, description="records the daily freeze keeps (5004 attribute 3)")
    upgrade: UpgradeImage | None = Field(
        None, description="the signed firmware image the upgrade plan loads: {image: PATH or twin, version, checksum}")

    @field_validator("server_address")
    @classmethod
    def _server_address(cls, value: str | None) -> str | None:
        if value is not None and not _SERVER_ADDRESS_RE.match(value.upper()):
            raise ValueError(f"server_address {value!r} must be an even count (2..32) of decimal digits")
        return value


class PositionConfig(StrictModel):
    """One meter position of the rack: its meter address, comms ports and pulse input."""

    name: str | None = None
    address: str = Field(description="meter address, 12 decimal digits as on the nameplate")
    serial: str | None = Field(default=None, description="pyserial URL or device path, or 'twin'")
    line: SerialSettings = SerialSettings()
    ble: BleConfig | None = None
    pulse_channel: int = Field(ge=1, description="error-calculator channel of the reference standard")
    expansion_tap: UartTapConfig | None = Field(
        None, description="UART adapter on the management-expansion module link (to watch its traffic), or none"
    )
    write_password: str = Field(
        "02000000", description="level (2 hex digits) and 6-digit password of DL/T 645 writes (14H), e.g. '02000000'"
    )
    spi: SpiPositionConfig | None = Field(None, description="the metering chip's SPI bus: master and/or capture")
    protocol: Literal["dlt645", "dlt698", "both"] = Field(
        "dlt645", description="what the meter speaks on its UART and BLE links: DL/T 645-2007, DL/T 698.45, or both")
    dlt698: Dlt698Config = Field(Dlt698Config(), description="DL/T 698.45 addressing (protocol dlt698 or both)")

    @property
    def speaks_645(self) -> bool:
        """The position's meter is read in DL/T 645-2007."""
        return self.protocol in ("dlt645", "both")

    @property
    def speaks_698(self) -> bool:
        """The position's meter is read in DL/T 698.45."""
        return self.protocol in ("dlt698", "both")

    @property
    def server_address(self) -> str:
        """The meter's DL/T 698.45 server address (the nameplate address unless the bench file says)."""
        return self.dlt698.server_address or self.address

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
