"""The master station's keys and sessions for a bench (rig layer): the key source named by the bench
file's `keys.esam_master` (a key file or environment variable; on the twin, the one the twin set up),
and a secure-session client per meter position."""

from __future__ import annotations

import random

from drivers.clock import Clock
from drivers.dlt645.link import MeterLink
from drivers.security import EsamSession, KeySource, MeterSecurityClient, SoftwareKeySource
from rig.bench import Position
from rig.config import ESAM_MASTER_KEY, BenchConfig, ConfigError


def key_source_for(config: BenchConfig) -> KeySource:
    """The bench's ESAM key source; ConfigError naming the reference when it is missing or unreadable."""
    ref = config.keys.get(ESAM_MASTER_KEY)
    if ref is None:
        raise ConfigError(f"the bench file names no keys.{ESAM_MASTER_KEY}: give the ESAM master key by "
                          "reference ({file: PATH} or {env: VARIABLE}) to run the security plans")
    where = f"key file {ref.file}" if ref.file is not None else f"environment variable {ref.env}"
    try:
        return SoftwareKeySource(ref.read(), f"keys.{ESAM_MASTER_KEY} ({where})")
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"keys.{ESAM_MASTER_KEY}: {exc}") from None


def secure_client(position: Position, keys: KeySource, clock: Clock, *, operator: str = "00000000",
                  rng: random.Random | None = None, link: MeterLink | None = None) -> MeterSecurityClient:
    """A secure-session client for the position's meter over its DL/T 645 link (meter number = address);
    `link`: another of its links (its BLE link) instead of the UART's."""
    chosen = link if link is not None else position.link
    if chosen is None:
        raise ConfigError(f"{position.name}: the bench file gives no serial port for this position")
    session = EsamSession(position.address, keys, operator=operator, rng=rng)
    return MeterSecurityClient(chosen, session, clock)
