"""A served twin as a labgrid bench: its instruments and meter ports in a labgrid exporter's config, and the
bench file that names them as the place's resources.

`rig twin serve --place NAME` writes both: the exporter config (one group, named after the place, that
`labgrid-exporter` publishes to the coordinator) and the bench file whose instrument resources and meter
ports say `place:<resource>`. The lab then makes the place (`labgrid-client -p NAME create`, `add-match
<exporter>/NAME/*/*`) and runs `rig run --place NAME --bench <that file>`. The twin's own channels (its
clock, SPI bus and Bluetooth controller) stay as the served addresses: labgrid has no resource for them,
and they belong to the twin, not to a bench a lab would wire.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from rig.config import BenchConfig
from rig.config.place import PLACE_PREFIX
from rig.lab.resources import PlaceError, labgrid_resource


def exporter_name(place: str) -> str:
    """The exporter's public name for a served twin's place (unique per coordinator)."""
    return f"twin-{place}"


def place_bench(bench: BenchConfig, place: str, coordinator: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(exporter config, bench document): every instrument and meter port of the served `bench` exported
    under `place`, and the bench with `place:<name>` in their stead."""
    data = bench.model_dump(mode="json", exclude_none=True)
    group: dict[str, Any] = {}

    def export(name: str, resource: str, speed: int = 115200) -> str:
        group[name] = labgrid_resource(resource, speed=speed)
        return f"{PLACE_PREFIX}{name}"

    for entry in data["instruments"]:
        entry["resource"] = export(entry["role"], entry["resource"])
    for index, (entry, position) in enumerate(zip(data["positions"], bench.positions)):
        name = bench.position_name(index)
        if position.serial:
            entry["serial"] = export(f"{name}-uart", position.serial, position.line.baud)
        if position.expansion_tap is not None and position.expansion_tap.serial:
            tap = position.expansion_tap
            entry["expansion_tap"]["serial"] = export(f"{name}-tap", tap.serial, tap.line.baud)
    if not group:
        raise PlaceError("the served bench has no instrument or meter port labgrid could export")
    data["place"] = {"name": place, **({"coordinator": coordinator} if coordinator else {})}
    return {place: group}, data


def exporter_command(config_file: Path, place: str, coordinator: str) -> list[str]:
    """labgrid-exporter for the config, publishing loopback addresses (the served twin listens there only)."""
    beside = Path(sys.executable).parent / "labgrid-exporter"
    program = str(beside) if beside.is_file() else "labgrid-exporter"
    return [program, "--coordinator", coordinator, "--name", exporter_name(place), "--hostname", "127.0.0.1",
            str(config_file)]


def write_exporter(bench: BenchConfig, place: str, coordinator: str | None, config_file: Path) -> str:
    """Write the exporter config; the bench YAML text with `place:` references."""
    exporter, document = place_bench(bench, place, coordinator)
    config_file.write_text(yaml.safe_dump(exporter, sort_keys=False))
    return yaml.safe_dump(document, sort_keys=False)


def start_exporter(command: list[str]) -> subprocess.Popen[bytes]:
    """labgrid-exporter as a child (its output to the terminal); PlaceError when labgrid is not installed."""
    try:
        return subprocess.Popen(command)
    except OSError as exc:
        raise PlaceError(f"cannot start {command[0]}: {exc.strerror} (pip install 'meter-hil-rig[lab]')") from None


def serve_on_place(bench: BenchConfig, place: str, *, config_file: Path | None, coordinator: str | None,
                   start: bool) -> tuple[str, subprocess.Popen[bytes] | None, list[str]]:
    """What `rig twin serve --place` adds: (the bench YAML with place references, the exporter started or
    None, the lines telling the lab the commands that make the place)."""
    from rig.config.place import PlaceConfig

    address = PlaceConfig(coordinator=coordinator).address()
    config_file = config_file or Path(f"labgrid-exporter-{place}.yaml")
    text = write_exporter(bench, place, coordinator, config_file)
    command = exporter_command(config_file, place, address)
    notes = [f"# labgrid exporter config: {config_file}",
             f"#   {'started' if start else 'start it with'}: {' '.join(command)}",
             f"# the place (once): labgrid-client -x {address} -p {place} create && "
             f"labgrid-client -x {address} -p {place} add-match '{exporter_name(place)}/{place}/*/*'"]
    return text, start_exporter(command) if start else None, notes
