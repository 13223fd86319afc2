#!/usr/bin/env python3
"""Benchmark: phone notification -> API WebSocket event latency, against a plain-TLS baseline.

    uv run python bench/notifications.py [--count 10000] [--rate 1000]

On 127.0.0.1 only (the daemon gets --bind 127.0.0.1 --no-discovery; nothing is broadcast):
  * PhoneBridge: a daemon process (no D-Bus session bus: toasts are logged, at warning level
    not even that) and, in this process, the DemoPhone linked over real TLS and paired. The phone
    sends COUNT `kdeconnect.notification` packets at RATE per second; a WebSocket client on
    /api/events timestamps each `notification.posted`. Latency = event received - packet sent
    (one clock: phone and WebSocket client share this process). Every notification is parsed,
    stored with its FTS row in SQLite, published and "toasted" by the daemon.
  * Baseline: the same lines at the same rate over one stdlib-ssl TLS connection on 127.0.0.1 to
    an asyncio reader (in this process) that splits lines and parses each with parse_packet.
Prints p50/p90/p99/max for both, their ratios, and the daemon's RSS before and after. Nothing is
asserted. Every process started here is ended by PID in `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from phonebridge.demo.phone import DemoPhone  # noqa: E402
from phonebridge.protocol import types  # noqa: E402
from phonebridge.protocol.framing import LineFramer  # noqa: E402
from phonebridge.protocol.packet import Packet  # noqa: E402
from phonebridge.transports.lan.tls import create_certificate  # noqa: E402


def body(i: int) -> dict:
    """What Android sends for a chat message (no icon: the payload path is not measured here)."""
    return {"id": f"0|org.example.bench|{i}|null|10123", "appName": "Bench", "title": f"Sender {i % 50}",
            "text": f"message number {i}: the quick brown fox jumps over the lazy dog",
            "ticker": f"Sender {i % 50}: message number {i}", "isClearable": True,
            "time": str(int(time.time() * 1000)), "silent": False, "requestReplyId": f"r-{i}"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


async def paced(count: int, rate: float, send) -> None:  # noqa: ANN001
    """Call `send(i)` COUNT times at RATE per second (in bursts of one tick)."""
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)


# -- PhoneBridge -------------------------------------------------------------------------------------

async def run_phonebridge(tmp: Path, count: int, rate: float) -> tuple[list[float], dict]:
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "PHONEBRIDGE_HOME")}
    env["XDG_RUNTIME_DIR"] = str(tmp)  # no session bus there
    log = open(tmp / "daemon.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon", "--bind", "127.0.0.1",
         "--no-discovery", "--api-port", "0", "--log-level", "warning", "--name", "bench-desktop"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    phone = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                port = json.loads((home / "daemon.json").read_text())["api_port"]
                token = (home / "api-token").read_text().strip()
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((tmp / "daemon.log").read_text()) from None
                await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
            status = (await api.get("/api/status")).json()
            phone = DemoPhone(tmp / "phone")
            await phone.start("127.0.0.1", status["tcp_port"])
            for _ in range(500):
                devices = (await api.get("/api/devices")).json()
                if any(d["id"] == phone.device_id for d in devices):
                    break
                await asyncio.sleep(0.02)
            await api.post(f"/api/devices/{phone.device_id}/pair", json={"wait": True, "timeout": 20})
            for _ in range(500):
                device = (await api.get(f"/api/devices/{phone.device_id}")).json()
                if device["paired"] and "notifications" in device["plugins"]:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            rss_before = rss_kib(proc.pid)

            sent: dict[str, float] = {}
            latencies: list[float] = []
            resyncs = 0
            done = asyncio.Event()
            url = f"ws://127.0.0.1:{port}/api/events?token={token}"
            async with websockets.connect(url, max_size=None) as ws:
                await ws.recv()  # hello

                async def reader() -> None:
                    nonlocal resyncs
                    async for message in ws:
                        now = time.perf_counter()
                        event = json.loads(message)
                        if event["type"] == "resync":
                            resyncs += 1
                        elif event["type"] == "notification.posted":
                            t0 = sent.pop(event["data"]["id"], None)
                            if t0 is not None:
                                latencies.append((now - t0) * 1000)
                        if len(latencies) + resyncs >= count or (not sent and len(latencies) >= count):
                            done.set()

                task = asyncio.get_running_loop().create_task(reader())

                async def send(i: int) -> None:
                    b = body(i)
                    sent[b["id"]] = time.perf_counter()
                    await phone.send(Packet(types.NOTIFICATION, b))

                started = time.perf_counter()
                await paced(count, rate, send)
                try:
                    await asyncio.wait_for(done.wait(), 60)
                except TimeoutError:
                    pass
                elapsed = time.perf_counter() - started
                task.cancel()
            await asyncio.sleep(0.5)
            rss_after = rss_kib(proc.pid)
            stored = len((await api.get(f"/api/devices/{phone.device_id}/notifications?limit=1000")).json())
        return latencies, {"rss_before": rss_before, "rss_after": rss_after, "lost": len(sent),
                           "resyncs": resyncs, "elapsed": elapsed, "listed": stored}
    finally:
        if phone is not None:
            await phone.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


# -- baseline: plain TLS + line parsing ----------------------------------------------------------------

async def run_baseline(tmp: Path, count: int, rate: float) -> list[float]:
    cert_pem, key_pem = create_certificate("benchbaseline0000000000000000000")
    (tmp / "b-cert.pem").write_bytes(cert_pem)
    (tmp / "b-key.pem").write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp / "b-cert.pem", tmp / "b-key.pem")
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = LineFramer()
        while data := await reader.read(256 * 1024):
            now = time.perf_counter()
            for packet in framer.feed(data):  # splits lines and parses each (parse_packet)
                if isinstance(packet, Packet):
                    i = int(packet.body["id"].split("|")[2])
                    latencies.append((now - sent.pop(i)) * 1000)
            if len(latencies) >= count:
                done.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=None)

    async def send(i: int) -> None:
        line = Packet(types.NOTIFICATION, body(i)).to_line(int(time.time() * 1000))
        sent[i] = time.perf_counter()
        writer.write(line)
        await writer.drain()

    await paced(count, rate, send)
    await asyncio.wait_for(done.wait(), 60)
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    await asyncio.sleep(0.1)  # let the reader see the end
    server.close()
    await server.wait_closed()
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="notifications per second")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-notif-"))
    try:
        print(f"load average {os.getloadavg()[0]:.2f}; {args.count} notifications at {args.rate:.0f}/s "
              "on 127.0.0.1")
        pb, info = await run_phonebridge(tmp, args.count, args.rate)
        base = await run_baseline(tmp, args.count, args.rate)
        p, b = percentiles(pb), percentiles(base)
        print(f"\n{'latency (ms)':<16}{'PhoneBridge':>14}{'baseline':>12}{'ratio':>10}")
        for key in ("p50", "p90", "p99", "max", "mean"):
            print(f"{key:<16}{p[key]:>14.2f}{b[key]:>12.3f}{p[key] / b[key]:>10.1f}")
        print(f"\nPhoneBridge: {len(pb)} events received, {info['lost']} missing, "
              f"{info['resyncs']} resyncs, {len(pb) / info['elapsed']:.0f} events/s over "
              f"{info['elapsed']:.1f} s; p99 target < 20 ms: {'met' if p['p99'] < 20 else 'NOT met'}")
        print(f"daemon RSS: {info['rss_before'] / 1024:.1f} MiB paired and idle, "
              f"{info['rss_after'] / 1024:.1f} MiB after {args.count} notifications "
              f"(+{(info['rss_after'] - info['rss_before']) / 1024:.1f} MiB); "
              f"API lists {info['listed']} (limit 1000)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
