"""LanLinkProvider: TCP listener, dialing, the handshakes of protocol 7 and 8 (PROTOCOL.md §3-§5).

Roles: whoever opens the TCP connection sends its identity in clear and is then the TLS *server*;
the side that accepted reads that identity and is the TLS *client*. For a peer announcing >= 8 both
sides then write their identity inside TLS and read the other's, which replaces the clear one.

The provider checks what the transport can check (valid identity, CN == deviceId, consistent
identities) and hands every link to `on_link`; trust (pinning, pairing) is the core's business.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from phonebridge.protocol.certs import certificate_common_name
from phonebridge.protocol.constants import (
    MAX_IDENTITY_LINE,
    MAX_LINE,
    TCP_PORT_MAX,
    TCP_PORT_MIN,
)
from phonebridge.protocol.errors import RemoteProtocolError
from phonebridge.protocol.framing import BadLine, LineFramer
from phonebridge.protocol.identity import Identity, parse_identity
from phonebridge.protocol.packet import Packet, parse_packet

from .discovery import UdpDiscovery
from .link import LanLink
from .tls import TlsStream, make_context

log = logging.getLogger(__name__)

PLAINTEXT_IDENTITY_TIMEOUT = 5.0
"""How long an accepted socket may take to send its clear identity (KDE allows 1 s, Android more)."""
V8_IDENTITY_TIMEOUT = 10.0
"""How long we wait for the peer's in-TLS identity when it announced protocol 8."""
UNKNOWN_VERSION_IDENTITY_TIMEOUT = 3.0
"""`connect HOST:PORT` does not know the peer's version: a v7 peer sends no in-TLS identity."""
CLIENT_IDENTITY_DELAY = 0.25
"""As TLS client, how long we wait for the peer's in-TLS identity before writing ours anyway.
Every known peer writes within milliseconds; only a dialer that does not know our version (our own
`connect HOST`) waits for us, and pays this once per link."""
DIAL_TIMEOUT = 10.0
UDP_REPEAT_WINDOW = 0.5
"""KDE ignores a second UDP identity from the same device within 500 ms (§3.2); so do we."""


class PortInUseError(OSError):
    """No TCP port in 1716-1764 could be bound on the requested addresses."""


def _same_device_id(cn: str, device_id: str) -> bool:
    # KDE turns every character outside [A-Za-z0-9_] into "_" in ids and CNs before comparing (§2).
    def norm(s: str) -> str:
        return "".join(c if c.isalnum() or c == "_" else "_" for c in s)

    return cn == device_id or norm(cn) == norm(device_id)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class LanLinkProvider:
    """Listens, discovers and dials; every established link goes to `on_link`."""

    def __init__(
        self,
        *,
        identity: Callable[[], Identity],
        cert_pem: bytes,
        key_pem: bytes,
        identity_files: tuple[str, str] | None = None,
        on_link: Callable[[LanLink], Awaitable[None]],
        is_linked: Callable[[str], bool],
        known_identity: Callable[[str], Identity | None],
        bind_addresses: list[str] | None = None,
        discovery_addresses: list[str] | None = None,
        discovery: bool = True,
        mdns: bool = True,
        tcp_ports: tuple[int, int] = (TCP_PORT_MIN, TCP_PORT_MAX),
        udp_port: int | None = None,
    ) -> None:
        self._identity = identity
        self._identity_files = identity_files
        self._server_ctx = make_context(cert_pem, key_pem, server=True)
        self._client_ctx = make_context(cert_pem, key_pem, server=False)
        self._on_link = on_link
        self._is_linked = is_linked
        self._known_identity = known_identity
        self.bind_addresses = list(bind_addresses or [])
        self.discovery_addresses = list(discovery_addresses or ["255.255.255.255"])
        self._tcp_ports = tcp_ports
        self._servers: list[asyncio.Server] = []
        self.tcp_port: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._dialing: set[str] = set()
        self._last_udp: dict[str, float] = {}
        self.announced: dict[str, tuple[str, int]] = {}
        """device id -> (host, tcpPort) from its last UDP identity or a link we dialed."""
        self.heard: dict[str, Identity] = {}
        """device id -> its last UDP identity (a v7 peer we dial says nothing more)."""
        self.udp = (
            UdpDiscovery(
                self._udp_identity,
                self._on_udp_identity,
                bind_addresses=self.bind_addresses,
                port=udp_port,
            )
            if discovery
            else None
        )
        self.mdns = None
        if discovery and mdns:
            from .mdns import MdnsDiscovery  # zeroconf is only imported when mDNS is on

            self.mdns = MdnsDiscovery(self._identity, self.announce_to, self.bind_addresses)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()
        if self.udp is not None:
            await self.udp.start()
        if self.mdns is not None:
            await self.mdns.start(self.tcp_port or TCP_PORT_MIN)
        self.announce()

    async def stop(self) -> None:
        self._stopping = True
        if self.mdns is not None:
            await self.mdns.stop()
        if self.udp is not None:
            self.udp.stop()
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except TimeoutError:
                pass

    async def _listen(self) -> None:
        hosts = self.bind_addresses or [None]
        first, last = self._tcp_ports
        errors = []
        for port in range(first, last + 1):
            servers = []
            try:
                for host in hosts:
                    servers.append(
                        await asyncio.start_server(
                            self._accept, host, port, limit=MAX_IDENTITY_LINE + 2,
                            reuse_address=True,
                        )
                    )
            except OSError as exc:
                errors.append(exc)
                for server in servers:
                    server.close()
                continue
            self._servers = servers
            self.tcp_port = port
            log.info("listening on tcp/%d (%s)", port, ", ".join(h or "all addresses" for h in hosts))
            return
        raise PortInUseError(
            f"no free TCP port in {first}-{last} on {', '.join(h or 'all addresses' for h in hosts)}"
            f" ({errors[-1] if errors else 'no port'}); stop the program using them or pass --bind"
        )

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- discovery ----------------------------------------------------------------------------

    def _udp_identity(self) -> Packet:
        return self._identity().with_port(self.tcp_port or TCP_PORT_MIN).to_packet(with_tcp_port=True)

    def announce(self, addresses: list[str] | None = None) -> None:
        """Send our UDP identity to the discovery addresses (or to `addresses`)."""
        if self.udp is not None:
            self.udp.send_identity(addresses or self.discovery_addresses)

    def announce_to(self, host: str) -> None:
        """Unicast our UDP identity to one host (after mDNS found it), inviting it to dial us."""
        if self.udp is not None:
            self.udp.send_identity([host])

    def _on_udp_identity(self, packet: Packet, host: str) -> None:
        try:
            peer = parse_identity(packet, require_tcp_port=True)
        except RemoteProtocolError as exc:
            log.debug("ignoring UDP identity from %s: %s", host, exc)
            return
        if peer.device_id == self._identity().device_id:
            return
        now = time.monotonic()
        if now - self._last_udp.get(peer.device_id, -1e9) < UDP_REPEAT_WINDOW:
            return
        self._last_udp[peer.device_id] = now
        assert peer.tcp_port is not None
        self.announced[peer.device_id] = (host, peer.tcp_port)
        self.heard[peer.device_id] = peer
        if self._is_linked(peer.device_id) or peer.device_id in self._dialing:
            return
        log.info("discovered %s (%r) at %s:%d", peer.device_id, peer.name, host, peer.tcp_port)
        self._spawn(self._dial_quietly(host, peer.tcp_port, peer))

    async def _dial_quietly(self, host: str, port: int, peer: Identity | None) -> None:
        try:
            await self.connect(host, port, peer)
        except (ConnectionError, OSError, TimeoutError, RemoteProtocolError) as exc:
            log.info("could not link to %s:%d: %s", host, port, exc)

    # -- dialing: we are TCP client and TLS server --------------------------------------------

    async def connect(self, host: str, port: int, peer: Identity | None = None) -> LanLink:
        """Dial `host:port`; returns the link once it is established and handed to the core."""
        if peer is not None:
            self._dialing.add(peer.device_id)
        writer = None
        try:
            local = self._local_address_for(host)
            async with asyncio.timeout(DIAL_TIMEOUT):
                reader, writer = await asyncio.open_connection(
                    host, port, limit=MAX_IDENTITY_LINE + 2,
                    local_addr=(local, 0) if local else None,
                )
            _tune_socket(writer)
            ours = self._identity()
            writer.write(ours.to_packet(target=peer).to_line(_now_ms()))
            stream = TlsStream(reader, writer, self._server_ctx, server=True)
            await stream.handshake()
            cert = _peer_certificate(stream)
            cn = certificate_common_name(cert)
            framer = LineFramer(MAX_IDENTITY_LINE)
            pending: list[Packet | BadLine] = []
            if peer is not None and peer.protocol_version < 8:
                final = peer
            elif peer is not None:
                await stream.write(ours.to_packet().to_line(_now_ms()))
                final, pending = await _read_identity(stream, framer, V8_IDENTITY_TIMEOUT)
                _check_consistent(peer, final)
            else:
                # `connect HOST`: the version is unknown. A v8 peer writes its identity unprompted
                # right after the handshake; a v7 peer never does, and would answer an identity of
                # ours as a stray packet (KDE 22.12 replies pair:false). So listen first.
                try:
                    final, pending = await _read_identity(
                        stream, framer, UNKNOWN_VERSION_IDENTITY_TIMEOUT)
                    await stream.write(ours.to_packet().to_line(_now_ms()))
                except TimeoutError:
                    final = (self.heard.get(cn) or self._known_identity(cn)
                             or Identity(cn, cn[:32], "desktop", 7))
            if not _same_device_id(cn, final.device_id):
                raise RemoteProtocolError(
                    f"certificate CN {cn!r} does not match device id {final.device_id!r}"
                )
            framer.max_line = MAX_LINE
            link = LanLink(stream, framer, final, cert, host, (host, port), pending,
                           local_host=_local_host(writer), identity_files=self._identity_files)
            self.announced[final.device_id] = (host, port)
            await self._on_link(link)
            writer = None
            return link
        finally:
            if peer is not None:
                self._dialing.discard(peer.device_id)
            if writer is not None:
                writer.close()

    def _local_address_for(self, host: str) -> str | None:
        if not self.bind_addresses:
            return None
        if is_loopback(host):
            return next((a for a in self.bind_addresses if is_loopback(a)), None)
        return next((a for a in self.bind_addresses if not is_loopback(a) and ":" not in a), None)

    # -- accepting: we are TCP server and TLS client ------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_host = writer.get_extra_info("peername", ("?", 0))[0]
        if peer_host.startswith("::ffff:"):
            peer_host = peer_host[7:]
        task = asyncio.current_task()
        if self._stopping or task is None:
            writer.close()
            return
        self._tasks.add(task)
        try:
            link = await self._handshake_accepted(reader, writer, peer_host)
        except (ConnectionError, OSError, TimeoutError, RemoteProtocolError,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            log.info("refused connection from %s: %s", peer_host, exc or type(exc).__name__)
            writer.close()
            return
        except asyncio.CancelledError:
            writer.close()
            raise
        finally:
            self._tasks.discard(task)
        if self._stopping:
            await link.close("stopping")
            return
        await self._on_link(link)

    async def _handshake_accepted(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_host: str
    ) -> LanLink:
        _tune_socket(writer)
        async with asyncio.timeout(PLAINTEXT_IDENTITY_TIMEOUT):
            line = await reader.readuntil(b"\n")
        if len(line) > MAX_IDENTITY_LINE + 1:
            raise RemoteProtocolError("identity line too long")
        clear = parse_identity(parse_packet(line))
        ours = self._identity()
        if clear.device_id == ours.device_id:
            raise RemoteProtocolError("connection from ourselves")
        if clear.target_device_id is not None and clear.target_device_id != ours.device_id:
            raise RemoteProtocolError(f"connection meant for device {clear.target_device_id}")
        if (clear.target_protocol_version is not None
                and clear.target_protocol_version != ours.protocol_version):
            raise RemoteProtocolError(
                f"connection meant for protocol {clear.target_protocol_version}")
        stream = TlsStream(reader, writer, self._client_ctx, server=False)
        await stream.handshake()
        cert = _peer_certificate(stream)
        cn = certificate_common_name(cert)
        if not _same_device_id(cn, clear.device_id):
            raise RemoteProtocolError(f"certificate CN {cn!r} does not match id {clear.device_id!r}")
        framer = LineFramer(MAX_IDENTITY_LINE)
        final, pending = clear, []
        if clear.protocol_version >= 8:
            # KDE as TLS server drops our identity when it arrives together with the handshake's
            # last flight (Qt connects its reader only after `encrypted`), so as TLS client we let
            # the peer speak first; every known peer writes its identity unprompted. If it stays
            # silent we write anyway, which keeps peers that wait for us working too.
            reading = asyncio.ensure_future(_read_identity(stream, framer, V8_IDENTITY_TIMEOUT))
            try:
                await asyncio.wait({reading}, timeout=CLIENT_IDENTITY_DELAY)
                await stream.write(ours.to_packet().to_line(_now_ms()))
                final, pending = await reading
            finally:
                reading.cancel()
            _check_consistent(clear, final)
        framer.max_line = MAX_LINE
        port = clear.tcp_port or self.announced.get(clear.device_id, (None, None))[1]
        address = (peer_host, port) if port else None
        return LanLink(stream, framer, final, cert, peer_host, address, pending,
                       local_host=_local_host(writer), identity_files=self._identity_files)


def _local_host(writer: asyncio.StreamWriter) -> str | None:
    sockname = writer.get_extra_info("sockname")
    if not sockname:
        return None
    host = sockname[0]
    return host[7:] if host.startswith("::ffff:") else host


def _peer_certificate(stream: TlsStream) -> bytes:
    cert = stream.peer_certificate()
    if cert is None:
        raise RemoteProtocolError("peer presented no certificate")
    return cert


def _check_consistent(clear: Identity, final: Identity) -> None:
    if final.device_id != clear.device_id or final.protocol_version != clear.protocol_version:
        raise RemoteProtocolError(
            f"in-TLS identity {final.device_id} v{final.protocol_version} differs from the clear one"
            f" {clear.device_id} v{clear.protocol_version}"
        )


async def _read_identity(
    stream: TlsStream, framer: LineFramer, timeout: float
) -> tuple[Identity, list[Packet | BadLine]]:
    """Read the peer's in-TLS identity; later packets that came with it are returned too."""
    async with asyncio.timeout(timeout):
        while True:
            data = await stream.read()
            if not data:
                raise ConnectionError("closed before sending its identity")
            items = framer.feed(data)
            if items:
                first, rest = items[0], items[1:]
                if isinstance(first, BadLine):
                    raise RemoteProtocolError(f"bad identity: {first.reason}")
                return parse_identity(first), rest


def _tune_socket(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # KDE's keepalive: idle 30 s, interval 10 s, 3 probes (§3.3); there is no app heartbeat.
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass


def _now_ms() -> int:
    return int(time.time() * 1000)
