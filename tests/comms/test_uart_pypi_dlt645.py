"""A second implementation agrees: the PyPI `dlt645` client, pointed at the twin meter's serial port,
reads the same energy (and voltage) the rig's link reads.

Its frame layer writes the address field high byte first (the standard sends it lowest byte first),
so it is given the address reversed. Its serial client opens ports with `serial_for_url(...,
write_timeout=...)`, which pyserial's RFC 2217 client rejects (NotImplementedError), so this test serves
the meter on a pty (`serial: twin+pty`), which it can open; a pty carries the baud, not the parity."""

from __future__ import annotations

import pytest

from rig.bench import bench_session
from rig.config import load_bench
from rig.procedures import LoadPoint, energise

dlt645 = pytest.importorskip("dlt645")

FORWARD_ENERGY = 0x00010000
VOLTAGE_A = 0x02010100


def _reversed(address: str) -> str:
    return "".join(address[i:i + 2] for i in range(10, -1, -2))


def test_pypi_client_reads_the_energy_the_rig_reads() -> None:
    config = load_bench(overrides=["positions.0.serial=twin+pty"])
    with bench_session(config) as bench:
        position = bench.positions[0]
        link = position.link
        assert link is not None and link.url.startswith("/dev/")
        meter = bench.meter
        energise(bench, LoadPoint(voltage_v=meter.un_v, current_a=meter.imax_a), settle_s=600)
        bench.source.apply(voltage_v=meter.un_v, current_a=0.0)  # mains stays on, the register stands still
        rig_kwh = link.read_number(FORWARD_ENERGY)
        assert rig_kwh > 2.0

        # 8N1: a pty carries no parity (this kernel even refuses PARENB on a pty that was set up before)
        client = dlt645.MeterClientService.new_rtu_client(port=link.url, baudrate=link.line.baud, databits=8,
                                                          stopbits=1, parity="N", timeout=1.0)
        try:
            assert client.set_address(_reversed(position.address))
            item = client.read_00(FORWARD_ENERGY)
            assert item is not None, "the PyPI client got no valid reply"
            assert item.value == pytest.approx(rig_kwh, abs=1e-9)
            voltage = client.read_02(VOLTAGE_A)
            assert voltage is not None and voltage.value == pytest.approx(link.read_number(VOLTAGE_A), abs=0.11)
            # Given the address as printed, its frames carry it in the wrong order: the meter is not addressed.
            client.client.timeout = 0.2
            assert client.set_address(position.address)
            assert client.read_00(FORWARD_ENERGY) is None
        finally:
            client.disconnect()
        assert link.read_number(FORWARD_ENERGY) == rig_kwh  # the rig's link still reads the same register
