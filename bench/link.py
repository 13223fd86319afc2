#!/usr/bin/env python3
"""Benchmark of PhoneBridge's LAN link against plain-Python baselines measured in the same run.

    sudo uv run python bench/link.py              # over the veth of shared/net/twinhosts.sh
    sudo uv run python bench/link.py --loopback   # 127.0.0.1 in the current namespace

Parts (each prints figures; nothing is asserted):
  a. link set-up: N fresh links (TCP + clear identity + TLS + v8 in-TLS identity exchange) from a
     LanLinkProvider in twin-a to a daemon in twin-b, vs N x (TCP connect + stdlib ssl handshake).
  b. packets/s: a DemoPhone paired with the daemon sends P kdeconnect.ping packets as fast as it
     can; done when the daemon has logged the notification of the last one. Baseline: the same
     lines over one stdlib ssl connection to a reader that splits lines and json-parses them.
  c. daemon start-up (spawn -> /api/status answers) vs `python -c "import phonebridge.app"`, and
     daemon RSS idle with one paired link vs a bare `python -c "import time; time.sleep(5)"`.

Network rule: only 127.0.0.1 (--loopback) or the twin-a/twin-b namespaces; the daemon always gets
--bind and --no-discovery. Every process started here is ended by PID, in `finally`.
The script re-runs itself as workers (`link.py _worker KIND JSON`) inside the namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("PHONEBRIDGE_SHARED", REPO.parent / "shared"))
TWINHOSTS = SHARED / "net" / "twinhosts.sh"
NS_A, NS_B = "twin-a", "twin-b"
IP_A, IP_B = "10.55.0.1", "10.55.0.2"
PHONE_NAME = "Demo Pixel"  # DemoPhone's default name: the daemon logs "notification: Demo Pixel: MSG"
READ_CHUNK = 256 * 1024


# ================================================================================================
# helpers shared by the orchestrator and the workers
# ================================================================================================

def emit(obj: dict[str, Any]) -> None:
    """A worker's answer: one JSON line on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ping_line(i: int, prefix: str = "pb-") -> bytes:
    """The wire form of DemoPhone.ping(f"{prefix}{i}") (Packet.to_line), built with json only."""
    obj = {"id": int(time.time() * 1000), "type": "kdeconnect.ping", "body": {"message": f"{prefix}{i}"}}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def baseline_context(d: dict[str, str], *, server: bool) -> ssl.SSLContext:
    """stdlib ssl, TLS 1.3, EC P-256 self-signed certificates on both sides, each pinned by the other.

    Both ends present a certificate and verify the other's, as on a PhoneBridge link.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    me, other = ("server", "client") if server else ("client", "server")
    ctx.load_cert_chain(d[f"{me}_cert"], d[f"{me}_key"])
    ctx.load_verify_locations(cafile=d[f"{other}_cert"])
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def api_request(home: str, method: str, path: str, body: Any = None, timeout: float = 10.0
                ) -> tuple[int, Any]:
    info = json.loads(Path(home, "daemon.json").read_text())
    token = Path(home, "api-token").read_text().strip()
    conn = http.client.HTTPConnection("127.0.0.1", int(info["api_port"]), timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


def wait_api(home: str, timeout: float, proc: subprocess.Popen | None = None,
             interval: float = 0.002) -> dict[str, Any]:
    """Poll until daemon.json exists and GET /api/status answers 200; returns the status."""
    deadline = time.monotonic() + timeout
    daemon_file = Path(home, "daemon.json")
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode} before its API answered")
        if daemon_file.exists():
            try:
                code, data = api_request(home, "GET", "/api/status", timeout=2)
                if code == 200:
                    return data
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                pass
        time.sleep(interval)
    raise TimeoutError(f"daemon API in {home} did not answer within {timeout:.0f} s")


def end_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM by PID, wait, then SIGKILL by PID."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


# ================================================================================================
# workers (run inside a namespace; talk JSON lines over stdin/stdout)
# ================================================================================================

def worker_agent(p: dict[str, Any]) -> None:
    """Long-lived helper in the daemon's namespace: API calls and start-up timings."""
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "quit":
                emit({"ok": True})
                return
            if op == "wait_api":
                emit({"ok": True, "status": wait_api(cmd["home"], cmd.get("timeout", 30))})
            elif op == "http":
                code, data = api_request(cmd["home"], cmd["method"], cmd["path"], cmd.get("body"),
                                         cmd.get("timeout", 30))
                emit({"ok": True, "code": code, "data": data})
            elif op == "startup":
                emit({"ok": True, **_timed_start(cmd)})
            else:
                emit({"ok": False, "error": f"unknown op {op}"})
        except Exception as exc:  # noqa: BLE001 - report to the orchestrator
            emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def _timed_start(cmd: dict[str, Any]) -> dict[str, Any]:
    """Spawn argv; time until it exits ("exit") or until its /api/status answers ("api")."""
    home = cmd.get("home")
    if home:
        with contextlib.suppress(FileNotFoundError):
            Path(home, "daemon.json").unlink()
    log = open(cmd["log"], "ab") if cmd.get("log") else subprocess.DEVNULL  # noqa: SIM115
    try:
        env = dict(os.environ)
        for key in cmd.get("env_unset", []):
            env.pop(key, None)
        env.update(cmd.get("env_set", {}))
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        try:
            if cmd["until"] == "exit":
                rc = proc.wait(cmd.get("timeout", 60))
                seconds = time.monotonic() - t0
                if rc != 0:
                    raise RuntimeError(f"{cmd['argv']} exited with {rc}")
            else:
                wait_api(home, cmd.get("timeout", 60), proc)
                seconds = time.monotonic() - t0
        finally:
            end_process(proc)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    return {"seconds": seconds}


def worker_tls_server(p: dict[str, Any]) -> None:
    """Baseline for (a): stdlib ssl server that completes `count` handshakes, one at a time."""
    ctx = baseline_context(p, server=True)
    deadline = time.monotonic() + p["timeout"]
    with socket.create_server((p["addr"], 0)) as lsock:
        emit({"port": lsock.getsockname()[1]})
        done = 0
        while done < p["count"] and time.monotonic() < deadline:
            lsock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                break
            nodelay(conn)
            conn.settimeout(10)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    with contextlib.suppress(OSError):
                        while tls.recv(4096):  # until the client closes
                            pass
            except (OSError, ssl.SSLError):
                conn.close()
            done += 1
    emit({"served": done})


def worker_line_reader(p: dict[str, Any]) -> None:
    """Baseline for (b): accept one stdlib ssl connection, split lines, json-parse each."""
    ctx = baseline_context(p, server=True)
    n = p["count"]
    with socket.create_server((p["addr"], 0)) as lsock:
        emit({"port": lsock.getsockname()[1]})
        lsock.settimeout(p["timeout"])
        conn, _ = lsock.accept()
        nodelay(conn)
        conn.settimeout(p["timeout"])
        tls = ctx.wrap_socket(conn, server_side=True)
        count = 0
        buf = b""
        t_first = None
        while count < n:
            data = tls.recv(READ_CHUNK)
            if not data:
                break
            if t_first is None:
                t_first = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.strip():
                    json.loads(line)
                    count += 1
        t_end = time.monotonic()
        tls.close()
    emit({"count": count, "t_first": t_first, "t_end": t_end})


def worker_line_writer(p: dict[str, Any]) -> None:
    """Baseline for (b): one stdlib ssl connection, one sendall per line (one TLS record each)."""
    ctx = baseline_context(p, server=False)
    sock = socket.create_connection((p["host"], p["port"]), timeout=p["timeout"],
                                    source_address=(p["bind"], 0))
    nodelay(sock)
    tls = ctx.wrap_socket(sock)
    t0 = time.monotonic()
    for i in range(p["count"]):
        tls.sendall(ping_line(i))
    t1 = time.monotonic()
    emit({"t0": t0, "t1": t1, "tls": tls.version(), "cipher": tls.cipher()[0]})
    with contextlib.suppress(OSError):  # read (session tickets) until the reader closes
        while tls.recv(4096):
            pass
    tls.close()


def worker_setup_client(p: dict[str, Any]) -> None:
    """(a): alternately one link with LanLinkProvider.connect and one baseline stdlib ssl handshake."""
    asyncio.run(_setup_client(p))


def _baseline_handshake(p: dict[str, Any], ctx: ssl.SSLContext) -> tuple[float, float, dict[str, str]]:
    """Blocking TCP connect + stdlib ssl handshake; returns (total, tcp part, info)."""
    t0 = time.perf_counter()
    sock = socket.create_connection((p["base_host"], p["base_port"]), timeout=10,
                                    source_address=(p["bind"], 0))
    nodelay(sock)
    t1 = time.perf_counter()
    tls = ctx.wrap_socket(sock)
    t2 = time.perf_counter()
    info = {"tls": tls.version(), "cipher": tls.cipher()[0]}
    tls.close()
    return t2 - t0, t1 - t0, info


async def _setup_client(p: dict[str, Any]) -> None:
    import phonebridge.transports.lan.provider as provider_mod
    from phonebridge.demo.phone import ANDROID_INCOMING, ANDROID_OUTGOING
    from phonebridge.identity_store import load_or_create_identity
    from phonebridge.protocol.constants import PROTOCOL_VERSION
    from phonebridge.protocol.identity import Identity
    from phonebridge.transports.lan.provider import LanLinkProvider

    # Instrumentation only: note when the TLS stream is created (TCP connected, clear identity
    # written) and when its handshake ended, to split the set-up time into phases.
    marks: dict[str, float] = {}
    base_stream = provider_mod.TlsStream

    class TimedTlsStream(base_stream):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            marks["tcp"] = time.perf_counter()
            super().__init__(*a, **k)

        async def handshake(self, *a: Any, **k: Any) -> None:
            await super().handshake(*a, **k)
            marks["tls"] = time.perf_counter()

    provider_mod.TlsStream = TimedTlsStream

    Path(p["home"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    local = load_or_create_identity(Path(p["home"]))
    ours = Identity(device_id=local.device_id, name="Bench Client", device_type="phone",
                    protocol_version=PROTOCOL_VERSION, incoming=ANDROID_INCOMING,
                    outgoing=ANDROID_OUTGOING)
    got: list[Any] = []

    async def on_link(link: Any) -> None:
        got.append(link)

    provider = LanLinkProvider(
        identity=lambda: ours, cert_pem=local.cert_pem, key_pem=local.key_pem, on_link=on_link,
        is_linked=lambda _id: False, known_identity=lambda _id: None,
        bind_addresses=[p["bind"]], discovery=False, mdns=False,
    )
    ctx = baseline_context(p, server=False)
    total, tcp, tls, ident, base, base_tcp = [], [], [], [], [], []
    info: dict[str, Any] = {}
    base_info: dict[str, str] = {}
    for i in range(p["warmup"] + p["count"]):
        marks.clear()
        t0 = time.perf_counter()
        link = await provider.connect(p["host"], p["port"])
        t3 = time.perf_counter()
        if not info:
            conn = link._stream._conn
            info = {"tls": link.tls_version, "cipher": conn.get_cipher_name(),
                    "group": conn.get_group_name(), "peer": link.identity.device_id}
        await link.close()
        # The baseline handshake right after, so that load from elsewhere hits both alike.
        b_total, b_tcp, base_info = _baseline_handshake(p, ctx)
        if i >= p["warmup"]:
            total.append(t3 - t0)
            tcp.append(marks["tcp"] - t0)
            tls.append(marks["tls"] - marks["tcp"])
            ident.append(t3 - marks["tls"])
            base.append(b_total)
            base_tcp.append(b_tcp)
    emit({"links": total, "tcp": tcp, "tls": tls, "identity": ident, "info": info,
          "baseline": base, "baseline_tcp": base_tcp, "baseline_info": base_info})


def worker_phone(p: dict[str, Any]) -> None:
    asyncio.run(_phone(p))


async def _phone(p: dict[str, Any]) -> None:
    """(b): a DemoPhone (auto-accepts pairing) driven by commands on stdin."""
    from phonebridge.demo.phone import DemoPhone

    loop = asyncio.get_running_loop()
    phone = DemoPhone(Path(p["home"]))
    try:
        await phone.start(p["host"], p["port"])
        emit({"event": "linked", "id": phone.device_id})
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "quit":
                emit({"ok": True})
                return
            if op == "wait_paired":
                deadline = time.monotonic() + cmd["timeout"]
                while not phone.is_paired and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                emit({"ok": phone.is_paired})
            elif op == "ping":
                emit({"ok": await phone.ping(cmd["message"]) is not False})
            elif op == "flood":
                prefix, n = cmd["prefix"], cmd["count"]
                t0 = time.monotonic()
                for i in range(n):
                    await phone.ping(f"{prefix}{i}")
                t1 = time.monotonic()
                emit({"ok": phone.link is not None, "t0": t0, "t1": t1})
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(phone.stop(), 10)


def worker_ws(p: dict[str, Any]) -> None:
    asyncio.run(_ws(p))


async def _ws(p: dict[str, Any]) -> None:
    """Optional observer for (b): count ping.received events on /api/events."""
    import websockets

    info = json.loads(Path(p["home"], "daemon.json").read_text())
    token = Path(p["home"], "api-token").read_text().strip()
    uri = f"ws://127.0.0.1:{info['api_port']}/api/events?token={token}"
    last = f"{p['prefix']}{p['count'] - 1}"
    pings = resyncs = 0
    t_last = None
    async with websockets.connect(uri, max_size=None) as ws:
        await ws.recv()  # hello
        emit({"event": "subscribed"})
        try:
            async with asyncio.timeout(p["timeout"]):
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "resync":
                        resyncs += 1
                    elif event["type"] == "ping.received":
                        message = event["data"].get("message") or ""
                        if message.startswith(p["prefix"]):
                            pings += 1
                            if message == last:
                                t_last = time.monotonic()
                                break
        except TimeoutError:
            pass
    emit({"pings": pings, "resyncs": resyncs, "t_last": t_last})


WORKERS = {
    "agent": worker_agent,
    "tls-server": worker_tls_server,
    "line-reader": worker_line_reader,
    "line-writer": worker_line_writer,
    "setup-client": worker_setup_client,
    "phone": worker_phone,
    "ws": worker_ws,
}


# ================================================================================================
# orchestrator
# ================================================================================================

@dataclass
class Place:
    """Where a process runs: a twin namespace (through twinhosts.sh exec-a/-b) or right here."""

    name: str
    addr: str
    prefix: list[str]


PYCACHE: Path | None = None
"""Set by main(): a bytecode cache folder in the temporary folder (PYTHONPYCACHEPREFIX), or None."""


def pyc_env(cached: bool) -> tuple[dict[str, str], list[str]]:
    """(variables to set, variables to unset) for running with a warm .pyc cache or as installed."""
    if cached:
        assert PYCACHE is not None
        return {"PYTHONPYCACHEPREFIX": str(PYCACHE)}, ["PYTHONDONTWRITEBYTECODE"]
    return {"PYTHONDONTWRITEBYTECODE": "1"}, ["PYTHONPYCACHEPREFIX"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # No session bus: the daemon logs notifications instead of sending 100k desktop toasts.
    for key in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PHONEBRIDGE_LOG", "PHONEBRIDGE_HOME"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    if PYCACHE is not None:
        set_, unset = pyc_env(True)
        for key in unset:
            env.pop(key, None)
        env.update(set_)
    return env


@dataclass
class Run:
    tmp: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, place: Place, argv: list[str], log_name: str, **kw: Any) -> subprocess.Popen:
        log = open(self.tmp / log_name, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(place.prefix + argv, stderr=log, env=child_env(), **kw)
        log.close()
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            end_process(proc)
        for proc in self.procs:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


class Worker:
    """A worker process: JSON commands to its stdin, JSON answers from its stdout (read by a thread)."""

    def __init__(self, run: Run, place: Place, kind: str, params: dict[str, Any],
                 profile: Path | None = None) -> None:
        self.kind = kind
        self.run = run
        prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
        self.proc = run.spawn(
            place, [sys.executable, *prof, str(HERE), "_worker", kind, json.dumps(params)],
            f"worker-{kind}.log", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def recv(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"worker {self.kind}: no answer within {timeout:.0f} s") from None
        if line is None:
            err = (self.run.tmp / f"worker-{self.kind}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"worker {self.kind} ended (rc={self.proc.wait(5)}):\n{err}")
        return json.loads(line)

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def call(self, obj: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.send(obj)
        answer = self.recv(timeout)
        if answer.get("ok") is False and "error" in answer:
            raise RuntimeError(f"worker {self.kind}: {answer['error']}")
        return answer

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.send({"op": "quit"})
                self.recv(timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        end_process(self.proc)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


class LogWatch:
    """Follows the daemon's log file (its stderr)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size

    def wait_for(self, marker: bytes, start: int, timeout: float, interval: float = 0.005,
                 alive: subprocess.Popen | None = None) -> float:
        """Monotonic time at which `marker` was first seen after byte `start`."""
        deadline = time.monotonic() + timeout
        pos, tail = start, b""
        with open(self.path, "rb") as fh:
            while True:
                fh.seek(pos)
                data = fh.read()
                now = time.monotonic()
                if data:
                    pos += len(data)
                    window = tail + data
                    if marker in window:
                        return now
                    tail = window[-len(marker):]
                if now > deadline:
                    raise TimeoutError(f"{marker!r} not in {self.path} within {timeout:.0f} s")
                if alive is not None and alive.poll() is not None:
                    raise RuntimeError(f"PID {alive.pid} ended while waiting for {marker!r}")
                time.sleep(interval)

    def count(self, needle: bytes, start: int) -> int:
        with open(self.path, "rb") as fh:
            fh.seek(start)
            return fh.read().count(needle)


def make_baseline_certs(tmp: Path) -> dict[str, str]:
    from phonebridge.transports.lan.tls import create_certificate

    out = {}
    for role in ("server", "client"):
        cert, key = create_certificate(f"baseline_{role}_0000000000000000000000")
        (tmp / f"base-{role}.pem").write_bytes(cert)
        (tmp / f"base-{role}.key").write_bytes(key)
        out[f"{role}_cert"] = str(tmp / f"base-{role}.pem")
        out[f"{role}_key"] = str(tmp / f"base-{role}.key")
    return out


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def namespaces_present() -> bool:
    return Path("/run/netns", NS_A).exists() and Path("/run/netns", NS_B).exists()


def daemon_argv(home: Path, bind: str, profile: Path | None = None) -> list[str]:
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return [sys.executable, *prof, "-m", "phonebridge", "--home", str(home), "daemon", "--bind", bind,
            "--no-discovery", "--api-port", "0", "--log-level", "info"]


def print_profile(path: Path, title: str, top: int = 30) -> None:
    import pstats

    if not path.exists():
        print(f"(no profile written at {path})")
        return
    print(f"\n== cProfile of the {title}, top {top} by own time ==")
    pstats.Stats(str(path), stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loopback", action="store_true",
                    help="run everything on 127.0.0.1 in the current namespace instead of the twins")
    ap.add_argument("--links", type=int, default=50, help="(a) timed links (default 50)")
    ap.add_argument("--warmup", type=int, default=2, help="(a) untimed links before the timed ones")
    ap.add_argument("--packets", type=int, default=100_000, help="(b) pings to send (default 100000)")
    ap.add_argument("--starts", type=int, default=5, help="(c) timed daemon start-ups (default 5)")
    ap.add_argument("--parts", default="abc", help="which parts to run, e.g. 'ab' (default abc)")
    ap.add_argument("--ws-observer", action="store_true",
                    help="(b) also run a second flood watched by an /api/events WebSocket subscriber")
    ap.add_argument("--timeout", type=float, default=300,
                    help="bound in seconds for each flood and each worker step (default 300)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    ap.add_argument("--no-pycache", action="store_true",
                    help="run children as the environment says (e.g. PYTHONDONTWRITEBYTECODE) instead"
                    " of with a .pyc cache in the temporary folder (PYTHONPYCACHEPREFIX)")
    ap.add_argument("--profile", action="append", default=[], choices=["daemon", "phone"],
                    help="run the daemon / the phone worker under cProfile; prints the top functions")
    args = ap.parse_args()
    if os.geteuid() != 0 and not args.loopback:
        print("link.py: needs root for the network namespaces (or use --loopback)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-"))
    os.chmod(tmp, 0o755)
    run = Run(tmp)
    global PYCACHE
    PYCACHE = None if args.no_pycache else tmp / "pycache"
    brought_up = False
    try:
        if args.loopback:
            a = Place("loopback", "127.0.0.1", [])
            b = Place("loopback", "127.0.0.1", [])
        else:
            if not namespaces_present():
                subprocess.run([str(TWINHOSTS), "up"], check=True, timeout=60)
                brought_up = True
            subprocess.run([str(TWINHOSTS), "check"], check=True, timeout=60,
                           stdout=subprocess.DEVNULL)
            a = Place(NS_A, IP_A, [str(TWINHOSTS), "exec-a"])
            b = Place(NS_B, IP_B, [str(TWINHOSTS), "exec-b"])
        return bench(args, run, a, b)
    finally:
        run.cleanup()
        if brought_up:
            subprocess.run([str(TWINHOSTS), "down"], timeout=60, check=False)
        if args.keep:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, run: Run, a: Place, b: Place) -> int:
    import OpenSSL

    tmp = run.tmp
    parts = set(args.parts)
    certs = make_baseline_certs(tmp)
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    where = "loopback 127.0.0.1" if args.loopback else f"veth {a.name} {a.addr} -> {b.name} {b.addr}"
    print(f"PhoneBridge link benchmark over {where}; python {sys.version.split()[0]}, "
          f"pyOpenSSL {OpenSSL.__version__} ({OpenSSL.SSL.SSLeay_version(OpenSSL.SSL.SSLEAY_VERSION).decode()}),"
          f" stdlib ssl: {ssl.OPENSSL_VERSION}; {os.cpu_count()} CPUs; load average {loadavg()}",
          flush=True)

    agent = Worker(run, b, "agent", {})

    # -- (c) start-up, before anything else runs -------------------------------------------------
    if "c" in parts:
        home_c = tmp / "startup-home"
        log_c = str(tmp / "startup.log")
        modes = [("cached", True)] + ([("as installed", False)] if PYCACHE is not None else [])
        for label, cached in modes:
            env_set, env_unset = pyc_env(cached) if PYCACHE is not None else ({}, [])

            def start(argv: list[str], until: str, home: Path | None = None) -> float:
                cmd = {"op": "startup", "argv": argv, "until": until, "log": log_c, "timeout": 60,
                       "env_set": env_set, "env_unset": env_unset}
                if home is not None:
                    cmd["home"] = str(home)
                return agent.call(cmd, 90)["seconds"]

            importing = [sys.executable, "-c", "import phonebridge.app"]
            first = start(daemon_argv(home_c, b.addr), "api", home_c)  # may fill the .pyc cache
            start(importing, "exit")
            starts, imports = [], []
            for _ in range(args.starts):  # alternate, so that load from elsewhere hits both alike
                starts.append(start(daemon_argv(home_c, b.addr), "api", home_c))
                imports.append(start(importing, "exit"))
            bare = [start([sys.executable, "-c", "pass"], "exit") for _ in range(3)]
            s_med, i_med = statistics.median(starts), statistics.median(imports)
            what = {"cached": ".pyc cached" if PYCACHE is not None else "as installed",
                    "as installed": "no .pyc, as installed here"}[label]
            rows.append((f"(c) daemon start-up, {what}, median of {args.starts} (s)", f"{s_med:.3f}",
                         f"{i_med:.3f}", f"{s_med / i_med:.2f}x"))
            notes.append(f"(c) start-ups ({what}): {', '.join(f'{x:.3f}' for x in starts)} s; untimed"
                         f" {'first start (new home; fills the .pyc cache)' if label == 'cached' else 'warm-up'}:"
                         f" {first:.3f} s; `import phonebridge.app`:"
                         f" {', '.join(f'{x:.3f}' for x in imports)} s; bare `python -c pass`:"
                         f" median {statistics.median(bare):.3f} s")

    # -- the daemon for (a) and (b) ----------------------------------------------------------------
    daemon = None
    if parts & {"a", "b", "c"}:
        home_d = tmp / "daemon-home"
        home_d.mkdir(mode=0o700)
        daemon = run.spawn(b, daemon_argv(home_d, b.addr, tmp / "daemon.prof" if "daemon" in args.profile
                                          else None), "daemon.log", stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
        status = agent.call({"op": "wait_api", "home": str(home_d), "timeout": 30}, 60)["status"]
        port = status["tcp_port"]
        cmdline = Path(f"/proc/{daemon.pid}/cmdline").read_bytes()
        assert b"phonebridge" in cmdline, f"PID {daemon.pid} is not the daemon: {cmdline!r}"
        logw = LogWatch(tmp / "daemon.log")
        print(f"daemon PID {daemon.pid} listening on {b.addr}:{port}", flush=True)

    # -- (a) link set-up ---------------------------------------------------------------------------
    if "a" in parts:
        n = args.links
        server = Worker(run, b, "tls-server", {**certs, "addr": b.addr, "count": n + args.warmup,
                                                  "timeout": args.timeout})
        base_port = server.recv(30)["port"]
        client = Worker(run, a, "setup-client", {
            **certs, "host": b.addr, "port": port, "bind": a.addr, "home": str(tmp / "client-home"),
            "count": n, "warmup": args.warmup, "base_host": b.addr, "base_port": base_port,
        })
        ours = base = client.recv(args.timeout)
        server.recv(30)
        links, bl = ours["links"], base["baseline"]
        med, bmed = statistics.median(links), statistics.median(bl)
        rows.append((f"(a) link set-up median, {n} links (ms)", f"{med * 1e3:.2f}", f"{bmed * 1e3:.2f}",
                     f"{med / bmed:.2f}x"))
        rows.append(("(a) link set-up p90 (ms)", f"{pct(links, 0.9) * 1e3:.2f}",
                     f"{pct(bl, 0.9) * 1e3:.2f}", f"{pct(links, 0.9) / pct(bl, 0.9):.2f}x"))
        rows.append(("(a) link set-up min (ms)", f"{min(links) * 1e3:.2f}", f"{min(bl) * 1e3:.2f}",
                     f"{min(links) / min(bl):.2f}x"))
        notes.append(
            f"(a) PhoneBridge phases (median): TCP connect + clear identity {ms(statistics.median(ours['tcp']))},"
            f" TLS handshake {ms(statistics.median(ours['tls']))}, in-TLS identity exchange + checks"
            f" {ms(statistics.median(ours['identity']))}; max {ms(max(links))};"
            f" {ours['info']['tls']} {ours['info']['cipher']} group {ours['info']['group']}")
        notes.append(f"(a) baseline phases (median): TCP connect {ms(statistics.median(base['baseline_tcp']))},"
                     f" max {ms(max(bl))}; {base['baseline_info']['tls']} {base['baseline_info']['cipher']}")
        slow = [x for x in links if x > 0.9]
        if slow:
            notes.append(f"(a) FINDING: {len(slow)} of {n} links took ~1 s or more (CLIENT_IDENTITY_DELAY?)")
        client.stop()
        server.stop()

    # -- (b) packets per second, and (c) RSS with one paired link ------------------------------------
    if parts & {"b", "c"}:
        phone = Worker(run, a, "phone", {"home": str(tmp / "phone-home"), "host": b.addr,
                                          "port": port},
                       profile=tmp / "phone.prof" if "phone" in args.profile else None)
        phone_id = phone.recv(60)["id"]
        answer = agent.call({"op": "http", "home": str(home_d), "method": "POST",
                             "path": f"/api/devices/{phone_id}/pair",
                             "body": {"wait": True, "timeout": 20}}, 60)
        if answer["code"] != 200 or not answer["data"].get("paired"):
            raise RuntimeError(f"pairing failed: {answer}")
        if not phone.call({"op": "wait_paired", "timeout": 20}, 60)["ok"]:
            raise RuntimeError("the phone did not see the pairing")
        off = logw.offset()
        phone.call({"op": "ping", "message": "warm-up"}, 30)
        logw.wait_for(f"notification: {PHONE_NAME}: warm-up\n".encode(), off, 30)
        time.sleep(2.0)  # let the link settle: battery, connectivity, mpris, runcommand are done
        idle_rss, _ = rss_mb(daemon.pid)

        if "c" in parts:
            bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"],
                                    env=child_env())
            run.procs.append(bare)
            imp = subprocess.Popen([sys.executable, "-c", "import phonebridge.app, time; time.sleep(5)"],
                                   env=child_env())
            run.procs.append(imp)
            time.sleep(2.5)
            bare_rss, _ = rss_mb(bare.pid)
            imp_rss, _ = rss_mb(imp.pid)
            end_process(bare)
            end_process(imp)
            rows.append(("(c) idle RSS, one paired link (MB)", f"{idle_rss:.1f}", f"{bare_rss:.1f}",
                         f"{idle_rss / bare_rss:.2f}x"))
            notes.append(f"(c) RSS of `python -c 'import phonebridge.app, time; time.sleep(5)'`: {imp_rss:.1f} MB")

        if "b" in parts:
            n = args.packets
            floods = [("pb-", False)] + ([("ws-", True)] if args.ws_observer else [])
            for prefix, with_ws in floods:
                ws = None
                if with_ws:
                    ws = Worker(run, b, "ws", {"home": str(home_d), "prefix": prefix, "count": n,
                                               "timeout": args.timeout})
                    ws.recv(30)
                off = logw.offset()
                phone.send({"op": "flood", "prefix": prefix, "count": n})
                t_end = logw.wait_for(f"notification: {PHONE_NAME}: {prefix}{n - 1}\n".encode(), off,
                                      args.timeout, alive=phone.proc)
                sent = phone.recv(args.timeout)
                handled = logw.count(f"notification: {PHONE_NAME}: {prefix}".encode(), off)
                pps = n / (t_end - sent["t0"])
                if not with_ws:
                    pb_pps, pb_sent = pps, sent
                    notes.append(f"(b) PhoneBridge: {n} pings in {t_end - sent['t0']:.2f} s; the phone"
                                 f" finished writing after {sent['t1'] - sent['t0']:.2f} s; daemon logged"
                                 f" {handled} of them")
                else:
                    w = ws.recv(args.timeout)
                    notes.append(f"(b) with a WebSocket subscriber on /api/events: {pps:,.0f} packets/s;"
                                 f" it received {w['pings']} of {n} ping.received events and"
                                 f" {w['resyncs']} resync events; last one "
                                 f"{'seen' if w['t_last'] else 'NOT seen (dropped by the event bus)'}")
                    ws.stop()
            rss_after, hwm = rss_mb(daemon.pid)
            notes.append(f"(c) daemon RSS after the flood(s): {rss_after:.1f} MB (peak {hwm:.1f} MB)")

            reader = Worker(run, b, "line-reader", {**certs, "addr": b.addr, "count": n,
                                                       "timeout": args.timeout})
            rport = reader.recv(30)["port"]
            writer = Worker(run, a, "line-writer", {**certs, "host": b.addr, "port": rport,
                                                       "bind": a.addr, "count": n,
                                                       "timeout": args.timeout})
            w = writer.recv(args.timeout)
            r = reader.recv(args.timeout)
            if r["count"] != n:
                raise RuntimeError(f"baseline reader got {r['count']} of {n} lines")
            base_pps = n / (r["t_end"] - w["t0"])
            notes.append(f"(b) baseline: {n} lines in {r['t_end'] - w['t0']:.2f} s; the writer finished"
                         f" after {w['t1'] - w['t0']:.2f} s; {w['tls']} {w['cipher']}")
            rows.append((f"(b) packets/s, {n} pings over one link", f"{pb_pps:,.0f}", f"{base_pps:,.0f}",
                         f"{pb_pps / base_pps:.2f}x"))
            writer.stop()
            reader.stop()
        phone.stop()

    agent.stop()
    if daemon is not None:
        end_process(daemon)
    if "daemon" in args.profile:
        print_profile(tmp / "daemon.prof", "daemon (its whole life)")
    if "phone" in args.profile:
        print_profile(tmp / "phone.prof", "phone worker (its whole life)")

    rows.sort(key=lambda r: r[0][:3])
    notes.sort(key=lambda n: n[:3])
    print()
    for note in notes:
        print(note)
    print()
    headers = ("metric", "PhoneBridge", "baseline", "ratio PB/baseline")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print(line)
    print(f"load average at the end: {loadavg()} (other work on the machine shows up as noise)")
    print("baselines: (a) TCP connect + stdlib ssl TLS 1.3 handshake, EC P-256 certificates both ways;"
          " (b) same lines over one stdlib ssl connection to a reader that splits and json-parses;"
          " (c) `python -c 'import phonebridge.app'` and RSS of a bare `python -c 'import time;"
          " time.sleep(5)'`. Times: ratio > 1 = PhoneBridge slower; packets/s: ratio < 1 = slower.")
    return 0


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so that `finally` blocks end what we started


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if len(sys.argv) >= 4 and sys.argv[1] == "_worker":
        WORKERS[sys.argv[2]](json.loads(sys.argv[3]))
    else:
        sys.exit(main())
