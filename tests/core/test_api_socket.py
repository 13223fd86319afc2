"""The local API's connections: Nagle off, so a response written as headers then body is not held
back until the client's delayed ACK (40 ms per request on Linux before this was fixed)."""

from __future__ import annotations

import asyncio
import socket

import helpers


async def test_api_connections_send_small_writes_at_once(tmp_path) -> None:
    daemon = await helpers.start_daemon(tmp_path / "home")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.api_port)
        writer.write(f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{daemon.api_port}\r\n"
                     f"Authorization: Bearer {daemon.token}\r\n\r\n".encode())
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        served = [conn.transport.get_extra_info("socket")
                  for conn in daemon._api_server.server_state.connections]
        assert served, "the daemon holds our connection"
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in served)
        writer.close()
    finally:
        await daemon.stop()
