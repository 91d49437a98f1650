"""IEEE 488.2 conformance of the twin's SCPI instruments, driven with plain pyvisa (no rig driver in between):
the mandatory common commands, status reporting (*ESR? bits for command, execution and device errors, the
status byte and its enable registers), and numbers with unit suffixes."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import pyvisa

from rig.config import ReferenceTwin, SourceTwin
from rig.twin.reference import ReferenceModel
from rig.twin.scpi import ScpiDevice, ScpiTcpServer
from rig.twin.source import SourceModel
from rig.twin.world import World

CME, EXE, DDE, QYE, OPC, PON = 0x20, 0x10, 0x08, 0x04, 0x01, 0x80
EAV, MAV, ESB, MSS = 0x04, 0x10, 0x20, 0x40


def _served(device: ScpiDevice) -> Iterator[pyvisa.resources.MessageBasedResource]:
    server = ScpiTcpServer(device)
    server.start()
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n", timeout=2000)
    try:
        yield inst
    finally:
        inst.close()
        server.stop()


@pytest.fixture(params=["source", "reference"])
def instrument(request: pytest.FixtureRequest) -> Iterator[pyvisa.resources.MessageBasedResource]:
    world = World(seed=1)
    device: ScpiDevice = (SourceModel(world, SourceTwin()) if request.param == "source"
                          else ReferenceModel(world, ReferenceTwin(), random.Random(1)))
    yield from _served(device)


@pytest.fixture
def source() -> Iterator[pyvisa.resources.MessageBasedResource]:
    yield from _served(SourceModel(World(seed=1), SourceTwin()))


def esr(inst: pyvisa.resources.MessageBasedResource) -> int:
    return int(inst.query("*ESR?"))


def test_power_on_bit_then_cleared_by_reading(instrument: pyvisa.resources.MessageBasedResource) -> None:
    assert esr(instrument) & PON, "a fresh instrument reports power-on"
    assert esr(instrument) == 0, "*ESR? clears the register"


def test_every_mandatory_common_query_answers(instrument: pyvisa.resources.MessageBasedResource) -> None:
    instrument.write("*CLS")
    assert "Meter HIL Twin" in instrument.query("*IDN?")
    assert instrument.query("*TST?") == "0"
    assert instrument.query("*OPC?") == "1"
    assert instrument.query("*STB?") == "0"
    assert instrument.query("*ESE?") == "0"
    assert instrument.query("*SRE?") == "0"
    instrument.write("*WAI")
    assert instrument.query("SYST:ERR?") == '0,"No error"', "none of them is an undefined header"


def test_command_error_sets_cme_and_execution_error_sets_exe(source: pyvisa.resources.MessageBasedResource) -> None:
    source.write("*CLS")
    source.write("BOGUS:HEADER 1")
    assert esr(source) == CME
    source.write("SOUR:VOLT 9999")
    assert esr(source) == EXE
    assert source.query("SYST:ERR?") == '-113,"Undefined header"'
    assert source.query("SYST:ERR?") == '-222,"Data out of range"'


def test_status_byte_reports_the_error_queue_and_the_enabled_event_summary(
        source: pyvisa.resources.MessageBasedResource) -> None:
    source.write("*CLS")
    source.write("*ESE 48")  # command and execution errors make the ESB summary
    source.write("*SRE 32")  # and the summary requests service
    assert source.query("*ESE?;*SRE?") == "48;32"
    source.write("SOUR:VOLT 9999")
    stb = int(source.query("*STB?"))
    assert stb == EAV | ESB | MSS, f"status byte {stb}"
    assert int(source.query("*STB?")) == stb, "*STB? does not clear"
    source.write("*CLS")
    assert source.query("*STB?") == "0", "*CLS clears the queue and the event register; enables stay"
    assert source.query("*ESE?") == "48"


def test_message_available_while_a_reply_waits_in_the_same_line(source: pyvisa.resources.MessageBasedResource) -> None:
    source.write("*CLS")
    idn, stb = source.query("*IDN?;*STB?").rsplit(";", 1)
    assert "Meter HIL Twin" in idn and int(stb) & MAV


def test_opc_sets_operation_complete(source: pyvisa.resources.MessageBasedResource) -> None:
    source.write("*CLS;*ESE 1")
    source.write("*OPC")
    assert esr(source) == OPC


def test_enable_registers_refuse_out_of_range_values(source: pyvisa.resources.MessageBasedResource) -> None:
    source.write("*CLS")
    source.write("*ESE 256")
    assert source.query("SYST:ERR?") == '-222,"Data out of range"'
    assert source.query("*ESE?") == "0"


@pytest.mark.parametrize(("line", "error", "readback"), [
    ("SOUR:VOLT 230V;:SOUR:CURR 500 MA;:SOUR:PHAS 60DEG;:SOUR:FREQ 50HZ", '0,"No error"',
     "230.00000;0.50000;60.00000;50.00000"),
    ("SOUR:VOLT 0.1KV", '0,"No error"', "100.00000;0.00000;0.00000;50.00000"),
    ("SOUR:VOLT 230A", '-131,"Invalid suffix"', "0.00000;0.00000;0.00000;50.00000"),
])
def test_unit_suffixes_scale_and_a_wrong_unit_changes_nothing(
        source: pyvisa.resources.MessageBasedResource, line: str, error: str, readback: str) -> None:
    source.write("*CLS")
    source.write(line)
    assert source.query("SYST:ERR?") == error
    assert source.query("SOUR:VOLT?;:SOUR:CURR?;:SOUR:PHAS?;:SOUR:FREQ?") == readback
    assert esr(source) == (CME if error.startswith("-131") else 0)
