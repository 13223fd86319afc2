"""Payload channels on the LAN (PROTOCOL.md §7): a separate TLS connection per payload.

Sender: listen on the first free port of 1739-1764, announce it in the packet's
`payloadTransferInfo`, accept ONE connection as TLS *server* (no role reversal here), write exactly
`payloadSize` bytes, close with a TLS close_notify (GSConnect deletes the file without it) and give
the receiver a moment to close first (KDE lost the tail when the sender reset the connection).
Receiver: connect to the main link's peer address at that port as TLS *client*, read to the end.
Both sides present their certificate and accept only the paired device's pinned certificate, so
Python's `ssl` does the job here (CERT_REQUIRED with the pin as the only trust anchor).

Speed: the bytes are copied by a worker thread on a blocking `ssl` socket with large buffers
(`recv_into` one reused buffer, `sendall` of MiB-sized chunks). asyncio's SSL transport costs a
copy and a loop round trip per 256 KiB record batch; the thread runs at the speed of OpenSSL. The
event loop only sees progress (marshalled, throttled) and the result. Cancelling the awaiting task
shuts the socket down, which ends the worker at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable

from phonebridge.protocol.constants import PAYLOAD_PORT_MAX, PAYLOAD_PORT_MIN

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
"""Read buffer and the unit the sender works in."""
ACCEPT_TIMEOUT = 30.0
"""How long a sender waits for the receiver to connect (KDE: 30 s, Android: 10 s)."""
EMPTY_ACCEPT_TIMEOUT = 10.0
"""The same for an empty payload, which a receiver reading §1 strictly never fetches."""
IDLE_TIMEOUT = 30.0
"""A payload that sends nothing for this long is abandoned (a stalled peer)."""
CONNECT_TIMEOUT = 10.0
CLOSE_GRACE = 5.0
"""After our close_notify, how long the sender waits for the receiver to close (NOTES.md: KDE
loses the tail on an early reset; GSConnect never answers the close_notify, it just closes)."""
CLOSE_GRACE_RATE = 20e6
"""Bytes/s a slow receiver is assumed to write at least: one more second of grace per 20 MB."""
CLOSE_GRACE_MAX = 300.0
PROGRESS_INTERVAL = 0.05
"""Progress callbacks from the worker thread are marshalled to the loop at most this often."""
SEND_QUEUE = 8
"""Chunks buffered between an async source and the sending thread."""


class PayloadError(ConnectionError):
    """The payload could not be moved completely; the message says why."""


def _context(purpose: ssl.Purpose, cert_file: str, key_file: str, pinned_der: bytes) -> ssl.SSLContext:
    server = purpose is ssl.Purpose.CLIENT_AUTH
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=pinned_der)
    return ctx


class PayloadTls:
    """TLS contexts for payloads with one paired device."""

    def __init__(self, cert_file: str, key_file: str, pinned_der: bytes) -> None:
        self.client = _context(ssl.Purpose.SERVER_AUTH, cert_file, key_file, pinned_der)
        self.server = _context(ssl.Purpose.CLIENT_AUTH, cert_file, key_file, pinned_der)


class _Progress:
    """Calls `progress(n)` on the loop from a worker thread, at most every PROGRESS_INTERVAL."""

    def __init__(self, loop: asyncio.AbstractEventLoop, progress: Callable[[int], None] | None) -> None:
        self._loop = loop
        self._progress = progress
        self._last = 0.0

    def __call__(self, n: int, final: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if final or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._progress, n)


class _Abort:
    """Lets the loop side end a worker blocked in a socket call."""

    def __init__(self) -> None:
        self.aborted = False
        self.sock: socket.socket | None = None
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self.sock = sock
            if self.aborted:
                self._shutdown()

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


async def _in_thread(fn: Callable[[], int], abort: _Abort) -> int:
    future = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        abort.abort()
        with contextlib.suppress(BaseException):
            await future
        raise


def _no_delay(sock: socket.socket) -> None:
    """Nagle off: the TLS handshake's flights and the last small record of a payload otherwise
    wait for the peer's delayed ACK (about 40 ms per file on loopback)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _readable(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _check_port(port: int) -> None:
    if not PAYLOAD_PORT_MIN <= port <= PAYLOAD_PORT_MAX:
        raise PayloadError(f"payload port {port} outside {PAYLOAD_PORT_MIN}-{PAYLOAD_PORT_MAX}")


def _fetch_blocking(host: str, port: int, size: int, context: ssl.SSLContext,
                    write: Callable[[bytes], object], progress: _Progress, abort: _Abort) -> int:
    try:
        raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise PayloadError(f"cannot fetch payload from {host}:{port}: {exc or 'timed out'}") from None
    abort.attach(raw)
    received = 0
    sock: socket.socket = raw
    try:
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * CHUNK)
            _no_delay(raw)
            tls = context.wrap_socket(raw, server_side=False)
        except (OSError, ssl.SSLError) as exc:
            raise PayloadError(f"cannot fetch payload from {host}:{port}: {exc or 'timed out'}") from None
        sock = tls
        abort.attach(tls)
        tls.settimeout(IDLE_TIMEOUT)
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        ended = False
        while not ended and (size < 0 or received < size):
            # SSL_read gives one TLS record (<= 16 KiB) per call: gather a whole buffer before
            # handing it on, so the writer sees few large writes.
            want = CHUNK if size < 0 else min(CHUNK, size - received)
            filled = 0
            while filled < want:
                try:
                    n = tls.recv_into(view[filled:want], want - filled)
                except TimeoutError:
                    raise PayloadError(f"payload stalled after {received + filled} bytes") from None
                except ssl.SSLEOFError:
                    n = 0  # a close without close_notify: the byte count decides
                except (OSError, ssl.SSLError) as exc:
                    if abort.aborted:
                        raise PayloadError(f"payload cancelled after {received} bytes") from None
                    raise PayloadError(f"payload broke after {received + filled} bytes: {exc}"
                                       ) from None
                if not n:
                    ended = True
                    break
                filled += n
                if filled < want and not tls.pending() and not _readable(tls):
                    break  # the stream paused: hand on what we have rather than wait
            if filled:
                write(bytes(view[:filled]))
                received += filled
                progress(received)
        if abort.aborted:
            raise PayloadError(f"payload cancelled after {received} bytes")
    finally:
        sock.close()
    progress(received, final=True)
    if size >= 0 and received < size:
        raise PayloadError(f"payload ended after {received} of {size} bytes")
    return received


async def fetch(
    host: str,
    port: int,
    size: int,
    context: ssl.SSLContext,
    write: Callable[[bytes], object],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Receive a payload of `size` bytes (-1: until EOF) into `write`; returns the bytes received.

    `write` is called from a worker thread (it must be thread-safe: a file write is); `progress`
    is called on the loop. Raises PayloadError when the connection fails, stalls for IDLE_TIMEOUT,
    or ends early; exceptions raised by `write` (a full disk) propagate unchanged. Bytes beyond
    `size` are never read. Cancelling the caller closes the payload connection.
    """
    _check_port(port)
    abort = _Abort()
    marshal = _Progress(asyncio.get_running_loop(), progress)
    return await _in_thread(
        lambda: _fetch_blocking(host, port, size, context, write, marshal, abort), abort)


def _close_gracefully(tls: ssl.SSLSocket, sent: int, when_acknowledged: bool) -> None:
    """close_notify, then wait (bounded) before closing.

    KDE 22.12's socket reads far ahead of its file writes into an unbounded buffer and drops what
    it has not written when the connection ends early (a half-close or reset broke it), so the wait
    grows with the payload's size, and as no receiver answers the close_notify, it is waited out
    (about 5 s per file). Receivers that keep what reached them (`when_acknowledged`: KDE 25.04 and
    GSConnect 62 in the interop tests) are closed as soon as the kernel says they acknowledged every
    byte (Linux: SIOCOUTQ reaches 0).
    """
    limit = min(CLOSE_GRACE_MAX, CLOSE_GRACE + sent / CLOSE_GRACE_RATE)
    unacked = _unacknowledged_bytes(tls) if when_acknowledged else None
    if unacked is None:  # wait for the receiver's answer or close
        try:
            tls.settimeout(limit)
            tls.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
        return
    try:
        tls.setblocking(False)
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLWantWriteError):
            tls.unwrap()  # sends our close_notify; the receiver's answer is not awaited
    except (OSError, ssl.SSLError, ValueError):
        return
    deadline = time.monotonic() + limit
    pause = 0.0002  # the last ACK of a small file comes within a fraction of a millisecond on a LAN
    while time.monotonic() < deadline:
        # Done when the receiver has every byte, or has closed (it read all it wanted: our own
        # receiver closes at once, and then our close_notify meets a closed socket).
        if _input_ended(tls) or not _unacknowledged_bytes(tls):
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.01)
    _input_ended(tls)  # read what is left: unread input would make close() send a reset


def _input_ended(sock: socket.socket) -> bool:
    """Read and drop whatever the receiver sent (its close_notify); whether it closed its side."""
    while True:
        try:
            if not socket.socket.recv(sock, 65536, socket.MSG_DONTWAIT):
                return True
        except BlockingIOError:
            return False
        except OSError:  # reset
            return True


def _unacknowledged_bytes(sock: socket.socket) -> int | None:
    """Bytes sent but not yet acknowledged by the receiver (Linux), else None."""
    try:
        import fcntl
        import struct
        import termios

        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (ImportError, OSError, AttributeError):
        return None


class PayloadServer:
    """Serves one payload: `await open()` gives the port to announce, `await send(chunks)` serves it."""

    def __init__(self, context: ssl.SSLContext, bind_host: str | None = None, *,
                 close_when_acknowledged: bool = False) -> None:
        self._context = context
        self._bind = bind_host
        self._close_when_acknowledged = close_when_acknowledged
        """Close once the receiver acknowledged every byte, not after the full grace (see
        _close_gracefully)."""
        self._listener: socket.socket | None = None
        self.port: int | None = None

    async def open(self) -> int:
        last_error: OSError | None = None
        infos = socket.getaddrinfo(self._bind, 0, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family = infos[0][0] if self._bind else socket.AF_INET
        host = self._bind if self._bind else ""
        for port in range(PAYLOAD_PORT_MIN, PAYLOAD_PORT_MAX + 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
                sock.listen(4)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            self._listener = sock
            self.port = port
            return port
        raise PayloadError(f"no free payload port in {PAYLOAD_PORT_MIN}-{PAYLOAD_PORT_MAX}: {last_error}")

    def _accept(self, accept_timeout: float, abort: _Abort) -> ssl.SSLSocket:
        """The first connection that completes the pinned handshake (impostors are dropped)."""
        assert self._listener is not None
        listener = self._listener
        abort.attach(listener)
        deadline = time.monotonic() + accept_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or abort.aborted:
                raise PayloadError("the device did not fetch the payload")
            listener.settimeout(min(remaining, 0.5))
            try:
                raw, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if abort.aborted:
                    raise PayloadError("payload cancelled") from None
                raise PayloadError(f"payload listener failed: {exc}") from None
            try:
                raw.settimeout(CONNECT_TIMEOUT)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * CHUNK)
                _no_delay(raw)
                tls = self._context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.info("payload connection refused: %s", exc)
                raw.close()
                continue
            self.close()
            abort.attach(tls)
            tls.settimeout(IDLE_TIMEOUT)
            return tls

    def _serve_blocking(self, next_chunk: Callable[[], bytes | None], accept_timeout: float,
                        progress: _Progress, abort: _Abort) -> int:
        try:
            tls = self._accept(accept_timeout, abort)
        finally:
            self.close()
        sent = 0
        try:
            while True:
                chunk = next_chunk()
                if chunk is None:
                    break
                try:
                    tls.sendall(chunk)
                except (OSError, ssl.SSLError) as exc:
                    if abort.aborted:
                        raise PayloadError(f"payload cancelled after {sent} bytes") from None
                    raise PayloadError(f"payload broke after {sent} bytes: {exc}") from None
                sent += len(chunk)
                progress(sent)
            if abort.aborted:
                raise PayloadError(f"payload cancelled after {sent} bytes")
            _close_gracefully(tls, sent, self._close_when_acknowledged)
        finally:
            tls.close()
        progress(sent, final=True)
        return sent

    async def send(
        self,
        chunks: AsyncIterator[bytes],
        progress: Callable[[int], None] | None = None,
        accept_timeout: float = ACCEPT_TIMEOUT,
        size: int | None = None,
    ) -> int:
        """Wait for the receiver, write every chunk, close cleanly; returns the bytes sent.

        With `size`, a source that yields a different amount is an error (a file that changed).
        The chunks are produced on the loop and handed to the sending thread through a small queue.
        """
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        abort = _Abort()
        handoff: queue.Queue[bytes | None | BaseException] = queue.Queue(SEND_QUEUE)
        room = asyncio.Event()

        def next_chunk() -> bytes | None:
            while True:
                try:
                    item = handoff.get(timeout=0.5)
                    break
                except queue.Empty:
                    if abort.aborted:
                        return None
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(room.set)
            if isinstance(item, BaseException):
                raise PayloadError(f"the payload source failed: {item}")
            return item

        async def pump() -> None:
            try:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    while handoff.full():
                        room.clear()
                        if handoff.full():
                            await room.wait()
                    handoff.put_nowait(chunk)
            except Exception as exc:  # noqa: BLE001 - reported by the sending thread
                await _put(exc)
                return
            await _put(None)

        async def _put(item: bytes | None | BaseException) -> None:
            while handoff.full():
                room.clear()
                if handoff.full():
                    await room.wait()
            handoff.put_nowait(item)

        pumping = loop.create_task(pump())
        marshal = _Progress(loop, progress)
        try:
            sent = await _in_thread(
                lambda: self._serve_blocking(next_chunk, accept_timeout, marshal, abort), abort)
        finally:
            pumping.cancel()
            with contextlib.suppress(BaseException):
                await pumping
            self.close()
        if size is not None and sent != size:
            raise PayloadError(f"the source gave {sent} bytes, {size} were announced")
        return sent

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None


async def bytes_chunks(data: bytes, chunk: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]
