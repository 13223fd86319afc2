"""Payload channels over real TLS on 127.0.0.1: pinned both ways, exact sizes, clear failures."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading

import pytest

from phonebridge.identity_store import load_or_create_identity
from phonebridge.transports.lan import payload
from phonebridge.transports.lan.payload import PayloadError, PayloadServer, PayloadTls, bytes_chunks

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def identities(tmp_path):
    made = []
    for name in ("sender", "receiver", "impostor"):
        (tmp_path / name).mkdir()
        made.append(load_or_create_identity(tmp_path / name))
    return made


async def serve(tls: PayloadTls, chunks) -> tuple[PayloadServer, asyncio.Task]:
    server = PayloadServer(tls.server, "127.0.0.1")
    await server.open()
    return server, asyncio.create_task(server.send(chunks))


async def test_payload_arrives_whole_with_pinned_certificates(identities) -> None:
    sender, receiver, _ = identities
    data = os.urandom(3 * payload.CHUNK + 12345)
    server, sending = await serve(PayloadTls(*sender.files, receiver.cert_der), bytes_chunks(data))
    assert 1739 <= server.port <= 1764
    got = bytearray()
    seen: list[int] = []
    n = await payload.fetch("127.0.0.1", server.port, len(data),
                            PayloadTls(*receiver.files, sender.cert_der).client, got.extend, seen.append)
    assert n == len(data) == await sending
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert seen[-1] == len(data) and seen == sorted(seen)


async def test_an_impostor_cannot_fetch_and_the_real_receiver_still_can(identities) -> None:
    sender, receiver, impostor = identities
    data = b"secret" * 1000
    server, sending = await serve(PayloadTls(*sender.files, receiver.cert_der), bytes_chunks(data))
    with pytest.raises(PayloadError):
        await payload.fetch("127.0.0.1", server.port, len(data),
                            PayloadTls(*impostor.files, sender.cert_der).client, bytearray().extend)
    got = bytearray()
    await payload.fetch("127.0.0.1", server.port, len(data),
                        PayloadTls(*receiver.files, sender.cert_der).client, got.extend)
    assert bytes(got) == data and await sending == len(data)


async def test_receiver_refuses_a_sender_with_another_certificate(identities) -> None:
    sender, receiver, impostor = identities
    server, sending = await serve(PayloadTls(*impostor.files, receiver.cert_der), bytes_chunks(b"x" * 10))
    with pytest.raises(PayloadError):
        await payload.fetch("127.0.0.1", server.port, 10,
                            PayloadTls(*receiver.files, sender.cert_der).client, bytearray().extend)
    sending.cancel()
    server.close()


async def test_short_payload_is_an_error(identities) -> None:
    sender, receiver, _ = identities
    server, sending = await serve(PayloadTls(*sender.files, receiver.cert_der), bytes_chunks(b"y" * 100))
    with pytest.raises(PayloadError, match="ended after 100 of 1000 bytes"):
        await payload.fetch("127.0.0.1", server.port, 1000,
                            PayloadTls(*receiver.files, sender.cert_der).client, bytearray().extend)
    await sending


async def test_stalled_payload_is_abandoned(identities, monkeypatch) -> None:
    monkeypatch.setattr(payload, "IDLE_TIMEOUT", 0.5)
    sender, receiver, _ = identities
    release = asyncio.Event()

    async def half_then_stall():
        yield b"z" * 500
        await release.wait()

    server, sending = await serve(PayloadTls(*sender.files, receiver.cert_der), half_then_stall())
    with pytest.raises(PayloadError, match="stalled after 500 bytes"):
        await payload.fetch("127.0.0.1", server.port, 1000,
                            PayloadTls(*receiver.files, sender.cert_der).client, bytearray().extend)
    release.set()
    assert await sending == 500  # the sender cannot tell: its bytes sat in the socket buffers


async def test_ports_outside_the_payload_range_are_refused(identities) -> None:
    sender, receiver, _ = identities
    with pytest.raises(PayloadError, match="outside 1739-1764"):
        await payload.fetch("127.0.0.1", 22, 10, PayloadTls(*receiver.files, sender.cert_der).client,
                            bytearray().extend)


async def test_nobody_fetching_times_out(identities) -> None:
    sender, receiver, _ = identities
    server = PayloadServer(PayloadTls(*sender.files, receiver.cert_der).server, "127.0.0.1")
    await server.open()
    with pytest.raises(PayloadError, match="did not fetch"):
        await server.send(bytes_chunks(b"q"), accept_timeout=0.3)


async def test_a_source_shorter_than_announced_is_an_error(identities) -> None:
    sender, receiver, _ = identities
    server = PayloadServer(PayloadTls(*sender.files, receiver.cert_der).server, "127.0.0.1")
    await server.open()
    sending = asyncio.create_task(server.send(bytes_chunks(b"a" * 10), size=20))
    with pytest.raises(PayloadError):
        await payload.fetch("127.0.0.1", server.port, 20,
                            PayloadTls(*receiver.files, sender.cert_der).client, bytearray().extend)
    with pytest.raises(PayloadError, match="gave 10 bytes, 20 were announced"):
        await sending


async def test_a_receiver_keeping_the_connection_open_does_not_hold_a_protocol_8_sender(
        identities, monkeypatch) -> None:
    # KDE 25.04 and GSConnect never close nor answer our close_notify: the sender must not wait
    # out its grace once the receiver acknowledged every byte (KDE 22.12 still gets the wait).
    monkeypatch.setattr(payload, "CLOSE_GRACE", 30.0)
    sender, receiver, _ = identities
    data = os.urandom(2 * payload.CHUNK + 77)
    server = PayloadServer(PayloadTls(*sender.files, receiver.cert_der).server, "127.0.0.1",
                           close_when_acknowledged=True)
    await server.open()
    sending = asyncio.create_task(server.send(bytes_chunks(data)))
    release = threading.Event()

    def receive_and_hold() -> bytes:
        context = PayloadTls(*receiver.files, sender.cert_der).client
        with socket.create_connection(("127.0.0.1", server.port)) as raw, \
                context.wrap_socket(raw) as tls:
            got = bytearray()
            while len(got) < len(data):
                got += tls.recv(65536)
            release.wait(20)  # the connection stays open meanwhile
            return bytes(got)

    holder = asyncio.create_task(asyncio.to_thread(receive_and_hold))
    try:
        assert await asyncio.wait_for(asyncio.shield(sending), 10) == len(data)
    finally:
        release.set()
    assert await holder == data


async def test_both_ends_of_a_payload_turn_nagle_off(identities) -> None:
    """Without TCP_NODELAY each small file waited for a delayed ACK (~40 ms per file on loopback)."""
    sender, receiver, _ = identities
    sending_tls = PayloadTls(*sender.files, receiver.cert_der)
    receiving_tls = PayloadTls(*receiver.files, sender.cert_der)
    nodelay: dict[str, int] = {}

    def noting(side: str, context):  # noqa: ANN001, ANN202
        wrap = context.wrap_socket

        def wrap_socket(sock, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            nodelay[side] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            return wrap(sock, *args, **kw)
        context.wrap_socket = wrap_socket
        return context

    server = PayloadServer(noting("sender", sending_tls.server), "127.0.0.1")
    await server.open()
    sending = asyncio.create_task(server.send(bytes_chunks(b"small file")))
    got = bytearray()
    await payload.fetch("127.0.0.1", server.port, 10, noting("receiver", receiving_tls.client),
                        got.extend)
    assert await sending == 10 and bytes(got) == b"small file"
    assert nodelay == {"sender": 1, "receiver": 1}
