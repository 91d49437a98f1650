"""A plain DL/T 698.45 client session against `rig twin serve`: no rig code, only the PyPI `dlt698` package, the
standard library and PyYAML to read the bench YAML the twin wrote (`--out`). Usage:

    rig twin serve --set positions.0.serial=twin+pty --out served.yaml &
    python plain_dlt698_client.py served.yaml SECONDS

It turns the source on (SCPI over the twin's socket), waits SECONDS of wall time, then reads the forward
energy, the meter clock and the last minute-freeze record."""
import socket
import sys
import threading

import yaml
from dlt698 import Client, ClientOptions, ConnectionProfile, Oad, SessionOptions
from dlt698._native import AddressType, ServerAddress
from dlt698.model import Selector9
from dlt698.protocol import GetRecord

with open(sys.argv[1]) as file:
    bench = yaml.safe_load(file)
position = bench["positions"][0]
source = next(i for i in bench["instruments"] if i["role"] == "source")["resource"]  # TCPIP::127.0.0.1::PORT::SOCKET
host, port = source.split("::")[1], int(source.split("::")[2])
with socket.create_connection((host, port)) as scpi:  # mains on the meter: 220 V, 10 A through it
    scpi.sendall(b"VOLT 220\nCURR 10\nOUTP ON\n")
print("serial port:", position["serial"], "meter address:", position["address"])
threading.Event().wait(float(sys.argv[2]))  # let the paced twin run past a few minute freezes
sa = bytes.fromhex(position["address"])[::-1]  # SA as on the wire, lowest byte first
options = ClientOptions(protocol=SessionOptions(request_timeout=3.0,
                                                server=ServerAddress(bytes=sa, type=AddressType.single)))
with Client(options) as client:
    client.open_serial(position["serial"], 2400, ConnectionProfile.local_public)
    energy = client.get(Oad(oi=0x0010, attribute=2)).require_data()
    unit = client.get(Oad(oi=0x0010, attribute=3)).require_data().value
    print("0010 0200 forward active energy (raw, total T1 T2 T3 T4):", [d.value for d in energy.value],
          "scaler", unit.scaler, "unit", unit.unit)
    clock = client.get(Oad(oi=0x4000, attribute=2)).require_data().as_date_time_s()
    print("4000 0200 meter clock:", f"{clock[0] * 256 + clock[1]}-{clock[2]:02}-{clock[3]:02} "
          f"{clock[4]:02}:{clock[5]:02}:{clock[6]:02}")
    last = client.get_record(GetRecord(attribute=Oad(oi=0x5002, attribute=2), rows=Selector9(previous=1)))
    print("5002 0200 last minute-freeze record, columns:",
          [f"{c.oi:04X}{c.attribute:02X}{c.index:02X}" for c in last.columns])
    for row in last.result:
        for column, cell in zip(last.columns, row):
            value = cell.value
            if isinstance(value, list) and value and not isinstance(value[0], int):
                value = [d.value for d in value]  # array of registers
            shown = value
            print(f"  {column.oi:04X}{column.attribute:02X}{column.index:02X}:", shown)
    # Read again: a minute freeze may have fallen between the first reading and the record (the twin runs paced).
    after = client.get(Oad(oi=0x0010, attribute=2)).require_data()
    print("0010 0200 forward active energy after the record (raw):", [d.value for d in after.value])
