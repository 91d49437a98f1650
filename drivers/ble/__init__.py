"""Bluetooth LE transports (drivers layer): a meter's transparent-UART GATT service as a byte stream.

Built on bleak; the Bluetooth stack behind it is chosen by a `BleBackend` (the OS's by default). Nothing
opens at import; never imports the rig or pytest.
"""

from drivers.ble.gatt_uart import BleUartPort
from drivers.ble.target import Advertisement, BleBackend, BleTarget, GattCharacteristicInfo, GattServiceInfo, LinkStats

__all__ = ["Advertisement", "BleBackend", "BleTarget", "BleUartPort", "GattCharacteristicInfo", "GattServiceInfo",
           "LinkStats"]
