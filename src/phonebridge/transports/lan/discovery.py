"""UDP discovery on port 1716 (PROTOCOL.md §3.2): send our identity, hear others'.

Where it listens: with no bind addresses, on every address. With bind addresses, on each of them,
plus (for non-loopback ones) on 255.255.255.255:1716, because a socket bound to one unicast address
does not see broadcasts. Where it sends: to the discovery addresses it is given (default the limited
broadcast 255.255.255.255), from a bound address when there is one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from phonebridge.protocol.constants import UDP_PORT
from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.packet import Packet, parse_packet

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
"""Identities of 2 KB arrive IP-fragmented (NOTES.md): read whole datagrams."""


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpDiscovery, local: str) -> None:
        self._owner = owner
        self._local = local

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self._owner._datagram(data, addr[0], self._local)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class UdpDiscovery:
    def __init__(
        self,
        identity: Callable[[], Packet],
        on_identity: Callable[[Packet, str], None],
        *,
        bind_addresses: list[str],
        port: int | None = None,
    ) -> None:
        self._identity = identity
        self._on_identity = on_identity
        self._binds = bind_addresses
        self.port = port or UDP_PORT
        self._transports: list[asyncio.DatagramTransport] = []
        self._senders: list[socket.socket] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        hosts = list(self._binds) or ["0.0.0.0"]
        if self._binds and any(not a.startswith("127.") for a in self._binds):
            hosts.append("255.255.255.255")
        for host in hosts:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            try:
                sock.bind((host, self.port))
            except OSError as exc:
                sock.close()
                log.warning("cannot listen for discovery on %s:%d: %s", host, self.port, exc)
                continue
            transport, _ = await loop.create_datagram_endpoint(lambda h=host: _Receiver(self, h), sock=sock)
            self._transports.append(transport)
        for host in self._binds or [""]:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sender.setblocking(False)
            try:
                sender.bind((host, 0))
            except OSError as exc:
                log.warning("cannot send discovery from %s: %s", host or "any address", exc)
                sender.close()
                continue
            self._senders.append(sender)

    def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        for sender in self._senders:
            sender.close()
        self._transports.clear()
        self._senders.clear()

    def send_identity(self, addresses: list[str]) -> None:
        line = self._identity().to_line(0)
        for sender in self._senders:
            src = sender.getsockname()[0]
            for address in addresses:
                if src.startswith("127.") != address.startswith("127."):
                    continue  # loopback sends only to loopback, and the other way round
                try:
                    sender.sendto(line, (address, self.port))
                except OSError as exc:
                    log.info("discovery to %s from %s failed: %s", address, src or "*", exc)

    def _datagram(self, data: bytes, host: str, local: str) -> None:
        log.debug("UDP identity datagram from %s to %s (%d bytes)", host, local, len(data))
        try:
            packet = parse_packet(data.rstrip(b"\n"))
        except RemoteProtocolError as exc:
            log.debug("bad discovery datagram from %s: %s", host, exc)
            return
        self._on_identity(packet, host)
