"""Error tree of PhoneBridge; protocol errors live in phonebridge.protocol.errors."""

from phonebridge.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError


class PhonebridgeError(Exception):
    """Root of errors the daemon reports to the user."""


class StartupError(PhonebridgeError):
    """The daemon cannot start; the message says what to do."""


class DeviceError(PhonebridgeError):
    """An action on a device is not possible right now (unknown, unreachable, not paired)."""


class UnknownDeviceError(DeviceError):
    """No device with that id is known."""


__all__ = [
    "DeviceError",
    "LocalProtocolError",
    "PhonebridgeError",
    "ProtocolError",
    "RemoteProtocolError",
    "StartupError",
    "UnknownDeviceError",
]
