"""Shared helpers for the protocol, hostile-peer and store tests.

Test modules live in folders without __init__.py, so they put this folder on sys.path themselves
(see the two lines at the top of each module) and then `import helpers`.

Everything here binds 127.0.0.1 only and never enables discovery.
"""

from __future__ import annotations

import asyncio
import sys
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phonebridge.protocol import types
from phonebridge.protocol.constants import PROTOCOL_VERSION
from phonebridge.protocol.framing import BadLine, LineFramer
from phonebridge.protocol.identity import new_device_id
from phonebridge.protocol.packet import Packet, parse_packet

SHARED_PROTOCOL = Path("/work/shared/protocol")
SAMPLE_PACKETS = SHARED_PROTOCOL / "sample-packets.jsonl"

LOOPBACK = "127.0.0.1"


def sample_lines() -> list[bytes]:
    """Every line of the shared fixture file, newline included."""
    return [line + b"\n" for line in SAMPLE_PACKETS.read_bytes().splitlines() if line.strip()]


# -- certificates ----------------------------------------------------------------------------------


class PeerCert:
    """A self-signed certificate like a KDE Connect peer's: CN = device id (§4.2)."""

    def __init__(self, device_id: str | None = None, cn: str | None = None) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        from phonebridge.transports.lan.tls import create_certificate

        self.device_id = device_id or new_device_id()
        self.cert_pem, self.key_pem = create_certificate(cn if cn is not None else self.device_id)
        self.cert_der = x509.load_pem_x509_certificate(self.cert_pem).public_bytes(
            serialization.Encoding.DER
        )


# -- daemon ----------------------------------------------------------------------------------------


def port_range() -> tuple[int, int]:
    """A random TCP range for the daemon's listener (it takes the first free port in it)."""
    base = random.randrange(20000, 60000, 25)
    return base, base + 20


async def start_daemon(home: Path, **overrides: Any):  # noqa: ANN201
    """A real Daemon bound to 127.0.0.1 with discovery off and a FakeDesktop."""
    from phonebridge.app import Daemon
    from phonebridge.config import load_settings
    from phonebridge.desktop.fake import FakeDesktop

    first, last = port_range()
    settings = load_settings(
        home,
        bind=[LOOPBACK],
        discovery=False,
        mdns=False,
        api_port=0,
        tcp_port_min=first,
        tcp_port_max=last,
        name="Test Desktop",
        **overrides,
    )
    daemon = Daemon(settings, desktop=FakeDesktop())
    await daemon.start()
    return daemon


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def device_json(daemon, device_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    device = daemon.manager.devices.get(device_id)
    return device.to_json() if device is not None else None


# -- a hand-made peer ------------------------------------------------------------------------------


def identity_body(
    device_id: str,
    *,
    name: str = "Hostile Phone",
    version: int | str = PROTOCOL_VERSION,
    device_type: str = "phone",
    incoming: list[str] | None = None,
    outgoing: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deviceId": device_id,
        "deviceName": name,
        "deviceType": device_type,
        "protocolVersion": version,
        "incomingCapabilities": incoming if incoming is not None else [types.PING, types.BATTERY],
        "outgoingCapabilities": outgoing if outgoing is not None else [
            types.PING, types.BATTERY, types.CONNECTIVITY_REPORT,
        ],
    }
    body.update(extra)
    return body


def packet_line(ptype: str, body: dict[str, Any], **top: Any) -> bytes:
    obj = {"id": int(time.time() * 1000), "type": ptype, "body": body, **top}
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class RawPeer:
    """A peer built from the transport's pieces, so a test controls every byte it sends.

    It dials like a phone does: clear identity line, then TLS *server* with its own certificate
    (role reversal, §4.1), then for protocol >= 8 the in-TLS identity exchange (§5).
    """

    def __init__(self, cert: PeerCert | None = None, *, name: str = "Hostile Phone",
                 version: int = PROTOCOL_VERSION) -> None:
        self.cert = cert or PeerCert()
        self.name = name
        self.version = version
        self.stream = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None
        self.daemon_identity: Packet | None = None
        self.received: list[Packet] = []
        self.bad: list[BadLine] = []
        self.closed = asyncio.Event()
        self._new = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def device_id(self) -> str:
        return self.cert.device_id

    def identity(self, **overrides: Any) -> dict[str, Any]:
        return identity_body(self.device_id, name=self.name, version=self.version, **overrides)

    async def open_tcp(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(LOOPBACK, port)

    async def connect(
        self,
        port: int,
        *,
        clear_identity: dict[str, Any] | None = None,
        tls_identity: dict[str, Any] | None = None,
        send_tls_identity: bool = True,
        after_identity: bytes = b"",
    ) -> None:
        """Dial the daemon and finish the handshake; packets are collected in the background.

        `after_identity` is sent in the same TLS write as the in-TLS identity (protocol 8), as a
        phone that starts talking at once would. If the daemon ends the connection during the
        handshake, `closed` is set and the error (ConnectionError, TimeoutError or
        AssertionError) is raised.
        """
        try:
            await self._connect(port, clear_identity, tls_identity, send_tls_identity,
                                after_identity)
        except BaseException:
            self.closed.set()
            raise

    async def _connect(
        self,
        port: int,
        clear_identity: dict[str, Any] | None,
        tls_identity: dict[str, Any] | None,
        send_tls_identity: bool,
        after_identity: bytes = b"",
    ) -> None:
        from phonebridge.transports.lan.tls import TlsStream, make_context

        await self.open_tcp(port)
        assert self.writer is not None and self.reader is not None
        clear = clear_identity if clear_identity is not None else self.identity()
        self.writer.write(packet_line(types.IDENTITY, clear))
        ctx = make_context(self.cert.cert_pem, self.cert.key_pem, server=True)
        self.stream = TlsStream(self.reader, self.writer, ctx, server=True)
        await self.stream.handshake(timeout=5)
        framer = LineFramer()
        if int(str(clear.get("protocolVersion", 0))) >= 8 and send_tls_identity:
            body = tls_identity if tls_identity is not None else self.identity()
            await self.stream.write(packet_line(types.IDENTITY, body) + after_identity)
            pending: list = []
            async with asyncio.timeout(5):
                while not pending:
                    data = await self.stream.read()
                    if not data:
                        raise ConnectionError("daemon closed before sending its identity")
                    pending = framer.feed(data)
            first = pending.pop(0)
            assert isinstance(first, Packet) and first.type == types.IDENTITY, first
            self.daemon_identity = first
            for item in pending:
                self._collect(item)
        self._task = asyncio.get_running_loop().create_task(self._read(framer))

    def _collect(self, item: Packet | BadLine) -> None:
        if isinstance(item, BadLine):
            self.bad.append(item)
        else:
            self.received.append(item)
        self._new.set()

    async def _read(self, framer: LineFramer) -> None:
        try:
            while True:
                data = await self.stream.read()
                if not data:
                    break
                for item in framer.feed(data):
                    self._collect(item)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._new.set()

    async def send_raw(self, data: bytes) -> None:
        await self.stream.write(data)

    async def send(self, ptype: str, body: dict[str, Any], **top: Any) -> None:
        await self.send_raw(packet_line(ptype, body, **top))

    async def expect(self, predicate: Callable[[Packet], bool], timeout: float = 5.0) -> Packet:
        """The first received packet matching `predicate` (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            for packet in self.received:
                if predicate(packet):
                    return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.closed.is_set() and not self._new.is_set()):
                raise AssertionError(
                    f"no matching packet; got {[(p.type, p.body) for p in self.received]}"
                )
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def pair_packets(self) -> list[dict[str, Any]]:
        return [p.body for p in self.received if p.type == types.PAIR]

    async def wait_closed(self, timeout: float = 5.0) -> bool:
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        elif self.writer is not None:
            self.writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass


async def read_until_eof(reader: asyncio.StreamReader, timeout: float) -> bool:
    """True when the other side closed `reader` within `timeout` s (data read is discarded)."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True
    return True


async def pair_raw(daemon, peer: RawPeer) -> None:  # noqa: ANN001
    """Pair a connected RawPeer with the daemon: the peer asks, the daemon's user accepts."""
    await peer.send(types.PAIR, {"pair": True, "timestamp": int(time.time())})
    await wait_for(lambda: (device_json(daemon, peer.device_id) or {}).get("pair_state") == "incoming",
                   what="incoming pair request")
    await daemon.manager.pair(peer.device_id)
    await peer.expect(lambda p: p.type == types.PAIR and p.body.get("pair") is True)
    await wait_for(lambda: daemon.manager.devices[peer.device_id].is_paired, what="paired")


def parse_all(data: bytes) -> list[Packet | BadLine]:
    """Reference framing: split on newlines and parse each non-blank line independently."""
    out: list[Packet | BadLine] = []
    for line in data.split(b"\n")[:-1]:
        if not line.strip():
            continue
        try:
            out.append(parse_packet(line))
        except Exception as exc:  # noqa: BLE001
            out.append(BadLine(str(exc), len(line)))
    return out


async def next_event(sub, event_type: str, timeout: float = 5.0):  # noqa: ANN001, ANN201
    """The next event of `event_type` on a bus subscription."""
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if event.type == event_type:
                return event


async def run_cli(home: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """`phonebridge --home HOME ARGS` as a user runs it: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "phonebridge", "--home", str(home), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode, out.decode(), err.decode()


async def link_and_pair(daemon, phone) -> None:  # noqa: ANN001
    """Dial the daemon from the demo phone over loopback and pair (the phone accepts at once)."""
    await phone.start(LOOPBACK, daemon.provider.tcp_port)
    await wait_for(lambda: daemon.manager.is_linked(phone.device_id), what="linked")
    await daemon.manager.pair(phone.device_id)
