#!/usr/bin/env python3
"""Benchmark of file transfers: PhoneBridge against a raw Python TLS stream and real KDE Connect.

    sudo flock /tmp/phonebridge-twinhosts.lock uv run python bench/transfer.py twin [--size MiB]
    sudo flock /tmp/phonebridge-interop.lock uv run python bench/transfer.py peers [--size MiB]

Parts (figures printed, nothing asserted; MB = 10^6 bytes):
  twin   over the veth of shared/net/twinhosts.sh (twin-a = the demo phone, twin-b = the daemon):
         a. baseline: SIZE bytes over one stdlib TLS connection (1 MiB sendall, recv_into), memory
            to memory, same certificates' key type (EC P-256) and TLS version;
         b. the demo phone shares a SIZE file with the daemon (Android style, file to file);
         c. the daemon shares a SIZE file with the demo phone (`POST /api/devices/ID/share`);
         d. 1,000 files of 10 KiB each way (the demo phone speaks KDE Connect: a packet and a TLS
            connection per file);
         e. PhoneBridge -> PhoneBridge (a second daemon in twin-a): a SIZE file, then 1,000 files
            of 10 KiB, which go in one `phonebridge.share.bundle`; with the file system's floor:
            the same 1,000 files written, dated and renamed into place by one Python thread in
            the same folder, without any network (`--only e` runs a and e).
  peers  KDE Connect 22.12 and 25.04 in their namespaces (tests/interop/harness.py): the peer shares
         a SIZE file with PhoneBridge (`kdeconnect-cli --share`), and PhoneBridge with the peer.
Times are the receiver's view where we have one: the transfer's `started` (packet received) to
`finished` (last byte written, file renamed) in the daemon's transfer JSON.

Network rule: only the twin-a/twin-b namespaces or the peers' namespaces; daemons always get
--bind and --no-discovery. Processes started here are ended by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("PHONEBRIDGE_SHARED", REPO.parent / "shared"))
TWINHOSTS = SHARED / "net" / "twinhosts.sh"
NS_A, NS_B = "twin-a", "twin-b"
IP_A, IP_B = "10.55.0.1", "10.55.0.2"
BASELINE_PORT = 47391
MIB = 1024 * 1024
SMALL_COUNT, SMALL_SIZE = int(os.environ.get("PB_SMALL_COUNT", 1000)), 10 * 1024


def mb_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else float("inf")


def make_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(4 * MIB)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n
    return path


# -- workers (run inside a namespace: `transfer.py _worker KIND JSON`) --------------------------


def worker_tls_server(p: dict[str, Any]) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(p["cert"], p["key"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_server((p["host"], p["port"])) as srv:
        print(json.dumps({"ready": True}), flush=True)
        raw, _ = srv.accept()
        with ctx.wrap_socket(raw, server_side=True) as tls:
            buf = memoryview(bytearray(MIB))
            got = 0
            start = time.perf_counter()  # after the handshake, like the transfers' `started`
            while got < p["size"]:
                n = tls.recv_into(buf)
                if not n:
                    break
                got += n
            print(json.dumps({"bytes": got, "seconds": time.perf_counter() - start}), flush=True)


def worker_tls_client(p: dict[str, Any]) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((p["host"], p["port"])) as raw, ctx.wrap_socket(raw) as tls:
        block = os.urandom(MIB)
        left = p["size"]
        while left:
            n = min(left, MIB)
            tls.sendall(block[:n])
            left -= n
        tls.recv(1)  # until the server closes


async def stdin_commands() -> AsyncIterator[dict[str, Any]]:
    """A worker's commands: one JSON object per line on stdin, until it closes."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield json.loads(line)


def worker_phone(p: dict[str, Any]) -> None:
    asyncio.run(_phone(p))


async def _phone(p: dict[str, Any]) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from phonebridge.demo.phone import DemoPhone
    from phonebridge.demo.share import ShareFeature

    phone = DemoPhone(Path(p["home"]), name="Bench Phone")
    await phone.start(p["host"], p["port"], None)
    while not phone.is_paired:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    share = phone.feature(ShareFeature)
    print(json.dumps({"paired": phone.device_id}), flush=True)
    async for cmd in stdin_commands():
        if cmd["cmd"] == "send":
            start = time.perf_counter()
            sent = await share.send_files([Path(x) for x in cmd["paths"]])
            print(json.dumps({"bytes": sent, "seconds": time.perf_counter() - start}), flush=True)
        elif cmd["cmd"] == "wait":
            start = time.perf_counter()
            while len(share.files) + len(share.failed) < cmd["count"]:
                await asyncio.sleep(0.01)
            print(json.dumps({"files": len(share.files), "failed": len(share.failed),
                              "seconds": time.perf_counter() - start}), flush=True)
        elif cmd["cmd"] == "quit":
            break
    await phone.stop()


WORKERS = {"tls_server": worker_tls_server, "tls_client": worker_tls_client, "phone": worker_phone}


# -- orchestration --------------------------------------------------------------------------------


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, ns: str, argv: list[str], **kw: Any) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)
        self.procs.append(proc)
        return proc

    def worker(self, ns: str, kind: str, params: dict[str, Any]) -> subprocess.Popen:
        return self.start(ns, [sys.executable, str(HERE), "_worker", kind, json.dumps(params)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def end_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def read_json(proc: subprocess.Popen, timeout: float = 600) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip().startswith("{"):
            return json.loads(line)
        if not line and proc.poll() is not None:
            raise RuntimeError(f"worker exited ({proc.returncode})")
    raise TimeoutError("worker did not answer")


def pb_cli(ns: str, home: Path, *args: str, timeout: float = 600) -> str:
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "phonebridge", "--home",
                          str(home), *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"phonebridge {' '.join(args)}: {out.stderr}")
    return out.stdout


def wait_done(ns: str, home: Path, names: set[str], direction: str, timeout: float = 900
              ) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ts = [t for t in json.loads(pb_cli(ns, home, "transfers", "--json"))
              if t["name"] in names and t["direction"] == direction]
        if len(ts) >= len(names) and all(t["state"] != "active" for t in ts):
            bad = [t for t in ts if t["state"] != "done"]
            if bad:
                raise RuntimeError(f"transfers failed: {bad[:3]}")
            return ts
        time.sleep(2.0)  # a CLI spawn costs CPU the transfer needs; timing uses the JSON stamps
    raise TimeoutError("transfers did not finish")


def span(ts: list[dict[str, Any]]) -> float:
    return (max(t["finished"] for t in ts) - min(t["started"] for t in ts)) / 1000


def large_file_runs(big: Path, prefix: str, runs: int, share: Callable[[Path], None],
                    wait: Callable[[str], list[dict[str, Any]]], received: Callable[[str], Path]
                    ) -> tuple[Path, list[float]]:
    """Share `big` `runs` times under a new name each time; (its last path, MB/s of each run by the
    transfers' own stamps). The received copy is deleted and the disk synced between runs, so the
    write-back of one run does not compete with the next."""
    rates = []
    size = big.stat().st_size
    for i in range(runs):
        name = f"{prefix}-{i}.bin"
        os.replace(big, big.with_name(name))
        big = big.with_name(name)
        share(big)
        rates.append(mb_s(size, span(wait(name))))
        received(name).unlink()
        os.sync()
    return big, rates


def twin_up() -> bool:
    """The twin namespaces, made if missing; returns whether this run made them (and must remove)."""
    brought_up = False
    if subprocess.run(["ip", "netns", "pids", NS_A], capture_output=True).returncode != 0:
        subprocess.run([str(TWINHOSTS), "up"], check=True, timeout=60)
        brought_up = True
    subprocess.run([str(TWINHOSTS), "check"], check=True, timeout=60, capture_output=True)
    return brought_up


def start_daemon(procs: Procs, tmp: Path, downloads: Path, ns: str = NS_B, ip: str = IP_B,
                 name: str = "daemon") -> tuple[Path, int]:
    """A daemon in `ns` bound to its veth address, no discovery; (home, TCP port)."""
    home = tmp / name
    log = open(tmp / f"{name}.log", "wb")
    procs.start(ns, [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon",
                     "--bind", ip, "--no-discovery", "--api-port", "0", "--name", f"bench-{name}",
                     "--download-dir", str(downloads)], stdout=log, stderr=subprocess.STDOUT)
    while not (home / "daemon.json").exists():
        time.sleep(0.1)
    time.sleep(0.5)
    return home, json.loads(pb_cli(ns, home, "status", "--json"))["tcp_port"]


def pair_first_device(home: Path) -> str:
    """Wait for the (only) phone to link, pair with it; its id."""
    while True:
        devices = json.loads(pb_cli(NS_B, home, "devices", "--json"))
        if devices and devices[0]["reachable"]:
            break
        time.sleep(0.1)
    pb_cli(NS_B, home, "pair", devices[0]["id"])
    return devices[0]["id"]


def write_like_the_receiver(folder: Path, names: list[str], data: bytes) -> float:
    """The file system's floor for a bundle: each file written under a part name, dated and
    placed under its final name (plugins/share.py's `place`) by one thread; seconds taken."""
    from phonebridge.plugins.share import place

    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for n, name in enumerate(names):
        part = folder / f".floor{n}.phonebridge-part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.utime(fd, (time.time(), 1_600_000_000))
        os.close(fd)
        place(part, folder, name)
    return time.perf_counter() - start


def pb_to_pb(procs: Procs, tmp: Path, args: argparse.Namespace, results: dict[str, float]) -> None:
    """e. A daemon in twin-a shares with a daemon in twin-b: one large file, then small files."""
    size = args.size * MIB
    downloads = tmp / "pb-b-downloads"
    home_b, port_b = start_daemon(procs, tmp, downloads, NS_B, IP_B, "pb-b")
    home_a, _ = start_daemon(procs, tmp, tmp / "pb-a-downloads", NS_A, IP_A, "pb-a")
    pb_cli(NS_A, home_a, "connect", f"{IP_B}:{port_b}")
    while True:
        seen_a = json.loads(pb_cli(NS_A, home_a, "devices", "--json"))
        seen_b = json.loads(pb_cli(NS_B, home_b, "devices", "--json"))
        if seen_a and seen_a[0]["reachable"] and seen_b:
            break
        time.sleep(0.1)
    id_b, id_a = seen_a[0]["id"], seen_b[0]["id"]
    pairing = procs.start(NS_A, [sys.executable, "-m", "phonebridge", "--home", str(home_a), "pair",
                                 id_b, "--timeout", "30"], stdout=subprocess.DEVNULL)
    while json.loads(pb_cli(NS_B, home_b, "devices", "--json"))[0]["pair_state"] != "incoming":
        time.sleep(0.1)
    pb_cli(NS_B, home_b, "pair", id_a)
    if pairing.wait(40):
        raise RuntimeError("the two daemons did not pair")
    time.sleep(1.0)

    big = make_file(tmp / "pb-src" / "pb-big.bin", size)
    os.sync()
    big, runs = large_file_runs(
        big, "pb-big", args.runs,
        lambda path: pb_cli(NS_A, home_a, "share", "--no-wait", id_b, str(path)),
        lambda name: wait_done(NS_B, home_b, {name}, "in"), lambda name: downloads / name)
    big.unlink()
    results["pb_large"] = sorted(runs)[len(runs) // 2]
    print(f"e. PhoneBridge -> PhoneBridge, {args.size} MiB file: {results['pb_large']:.0f} MB/s "
          f"({', '.join(f'{r:.0f}' for r in runs)}) = "
          f"{results['pb_large'] / results['baseline']:.2f}x baseline")

    total = SMALL_COUNT * SMALL_SIZE
    data = os.urandom(SMALL_SIZE)
    small_runs, floor_runs = [], []
    for i in range(args.runs):
        folder = tmp / "pb-small" / str(i)
        folder.mkdir(parents=True)
        names = [f"r{i}-s{n:04d}.bin" for n in range(SMALL_COUNT)]
        for name in names:
            (folder / name).write_bytes(data)
        os.sync()
        pb_cli(NS_A, home_a, "share", "--no-wait", id_b, *[str(folder / n) for n in names])
        ts = wait_done(NS_B, home_b, set(names), "in")
        small_runs.append(mb_s(total, span(ts)))
        os.sync()
        floor_names = [f"floor{i}-s{n:04d}.bin" for n in range(SMALL_COUNT)]
        floor_runs.append(mb_s(total, write_like_the_receiver(downloads / f"floor-{i}",
                                                             floor_names, data)))
        os.sync()
    results["pb_small"] = sorted(small_runs)[len(small_runs) // 2]
    results["fs_floor"] = sorted(floor_runs)[len(floor_runs) // 2]
    print(f"   PhoneBridge -> PhoneBridge, {SMALL_COUNT} x 10 KiB (bundled): "
          f"{results['pb_small']:.0f} MB/s ({', '.join(f'{r:.0f}' for r in small_runs)}), "
          f"{results['pb_small'] * 1e6 / SMALL_SIZE:.0f} files/s = "
          f"{results['pb_small'] / results['pb_large']:.2f}x the large-file rate")
    print(f"   file-system floor, the same {SMALL_COUNT} files written and placed by one thread: "
          f"{results['fs_floor']:.0f} MB/s ({', '.join(f'{r:.0f}' for r in floor_runs)}); "
          f"PhoneBridge = {results['pb_small'] / results['fs_floor']:.2f}x the floor")



def twin(args: argparse.Namespace) -> None:
    size = args.size * MIB
    brought_up = twin_up()
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-transfer-"))
    results: dict[str, float] = {}
    try:
        # a. raw TLS baseline (the daemon's own certificate type: EC P-256 from identity_store)
        sys.path.insert(0, str(REPO / "src"))
        from phonebridge.identity_store import load_or_create_identity

        (tmp / "baseline-id").mkdir()
        ident = load_or_create_identity(tmp / "baseline-id")
        cert, key = ident.files
        runs = []
        for _ in range(args.runs):
            server = procs.worker(NS_B, "tls_server", {"host": IP_B, "port": BASELINE_PORT,
                                                       "size": size, "cert": cert, "key": key})
            read_json(server)
            client = procs.worker(NS_A, "tls_client", {"host": IP_B, "port": BASELINE_PORT,
                                                       "size": size})
            got = read_json(server)  # timed in the server: TLS accepted to last byte
            runs.append(mb_s(got["bytes"], got["seconds"]))
            client.wait(30)
            server.wait(30)
        results["baseline"] = sorted(runs)[len(runs) // 2]
        print(f"a. raw Python TLS, {args.size} MiB, twin-a -> twin-b: "
              f"{results['baseline']:.0f} MB/s (median of {args.runs}: "
              f"{', '.join(f'{r:.0f}' for r in runs)})")

        if args.only == "e":
            pb_to_pb(procs, tmp, args, results)
            print(json.dumps({"twin": results}))
            return

        # the daemon in twin-b, the demo phone in twin-a
        downloads = tmp / "daemon-downloads"
        home, port = start_daemon(procs, tmp, downloads)
        phone = procs.worker(NS_A, "phone", {"home": str(tmp / "phone"), "host": IP_B, "port": port})
        phone_id = pair_first_device(home)
        read_json(phone)

        def phone_cmd(obj: dict[str, Any]) -> dict[str, Any]:
            assert phone.stdin is not None
            phone.stdin.write(json.dumps(obj) + "\n")
            phone.stdin.flush()
            return read_json(phone)

        # b. phone -> daemon
        big = make_file(tmp / "src" / "big.bin", size)
        os.sync()
        big, runs = large_file_runs(
            big, "big", args.runs, lambda path: phone_cmd({"cmd": "send", "paths": [str(path)]}),
            lambda name: wait_done(NS_B, home, {name}, "in"), lambda name: downloads / name)
        results["in"] = sorted(runs)[len(runs) // 2]
        print(f"b. demo phone -> PhoneBridge, {args.size} MiB file: {results['in']:.0f} MB/s "
              f"({', '.join(f'{r:.0f}' for r in runs)}) = {results['in'] / results['baseline']:.2f}x"
              " baseline")

        # c. daemon -> phone
        def to_phone(path: Path) -> None:
            pb_cli(NS_B, home, "share", "--no-wait", phone_id, str(path))

        arrived_at_phone = [0]

        def at_phone(name: str) -> list[dict[str, Any]]:
            ts = wait_done(NS_B, home, {name}, "out")
            arrived_at_phone[0] += 1
            phone_cmd({"cmd": "wait", "count": arrived_at_phone[0]})
            return ts

        big, runs = large_file_runs(big, "out", args.runs, to_phone, at_phone,
                                    lambda name: tmp / "phone" / "Download" / name)
        results["out"] = sorted(runs)[len(runs) // 2]
        print(f"c. PhoneBridge -> demo phone, {args.size} MiB file: {results['out']:.0f} MB/s "
              f"({', '.join(f'{r:.0f}' for r in runs)}) = "
              f"{results['out'] / results['baseline']:.2f}x baseline")
        big.unlink()

        # d. 1,000 small files each way
        small = [make_file(tmp / "small" / f"s{i:04d}.bin", SMALL_SIZE) for i in range(SMALL_COUNT)]
        total = SMALL_COUNT * SMALL_SIZE
        phone_cmd({"cmd": "send", "paths": [str(p) for p in small]})
        ts = wait_done(NS_B, home, {p.name for p in small}, "in")
        took = span(ts)  # first packet received to last file renamed, as for the large files
        results["small_in"] = mb_s(total, took)
        print(f"d. demo phone -> PhoneBridge, {SMALL_COUNT} x 10 KiB: {took:.2f} s, "
              f"{SMALL_COUNT / took:.0f} files/s, {results['small_in']:.1f} MB/s = "
              f"{results['small_in'] / results['in']:.3f}x the large-file rate")
        body = json.dumps({"paths": [str(p) for p in small]})
        token = (home / "api-token").read_text().strip()
        api_port = json.loads((home / "daemon.json").read_text())["api_port"]
        subprocess.run(["ip", "netns", "exec", NS_B, sys.executable, "-c",
                        "import httpx,sys; r=httpx.post(sys.argv[1], content=sys.argv[2], "
                        "headers={'Authorization': 'Bearer '+sys.argv[3], 'Content-Type': "
                        "'application/json'}, timeout=60); r.raise_for_status()",
                        f"http://127.0.0.1:{api_port}/api/devices/{phone_id}/share", body, token],
                       check=True)
        ts = wait_done(NS_B, home, {p.name for p in small}, "out")
        took = span(ts)  # shared (all announced at once) to the last file sent
        results["small_out"] = mb_s(total, took)
        print(f"   PhoneBridge -> demo phone, {SMALL_COUNT} x 10 KiB: {took:.2f} s, "
              f"{SMALL_COUNT / took:.0f} files/s, {results['small_out']:.1f} MB/s = "
              f"{results['small_out'] / results['out']:.3f}x the large-file rate")
        phone_cmd({"cmd": "wait", "count": args.runs + SMALL_COUNT})
        pb_to_pb(procs, tmp, args, results)
        print(json.dumps({"twin": results}))
    finally:
        procs.end_all()
        if args.keep:
            print(f"kept {tmp} (daemon logs, downloads)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if brought_up:
            subprocess.run([str(TWINHOSTS), "down"], timeout=60, check=False)


def peers(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from interop.harness import KdeConnect7, KdeConnect8, PhoneBridge, wait_for

    size = args.size * MIB
    for cls in (KdeConnect7, KdeConnect8):
        peer = cls()
        if not peer.installed():
            print(f"{peer.name}: not installed, skipped")
            continue
        tmp = Path(tempfile.mkdtemp(prefix="pb-bench-peer-"))
        free = shutil.disk_usage(peer.share_root().parent if peer.share_root().parent.exists()
                                 else "/tmp").free
        this_size = size if free > 4 * size else max(MIB, (free // 8) // MIB * MIB)
        if this_size != size:
            print(f"{peer.name}: only {free / 1e9:.1f} GB free, using {this_size // MIB} MiB")
        peer.down()
        peer.up()
        pb = PhoneBridge(peer, tmp / "home", tmp / "daemon.log")
        try:
            downloads = tmp / "downloads"
            pb.start("--no-discovery", "--download-dir", str(downloads))
            pb.cli("connect", peer.peer_ip, timeout=40)
            pairing = pb.cli_background("pair", peer.id, "--timeout", "35")
            pb.wait_device(peer.id, lambda d: d["pair_state"] == "requested", 10, "request")
            peer.accept_pair(pb.id)
            pairing.communicate(timeout=40)
            pb.wait_device(peer.id, lambda d: d["paired"] and "share" in d["plugins"], 10, "paired")
            src = make_file(peer.share_root() / "pb-bench" / "bench-in.bin", this_size)
            os.sync()
            peer.share(pb.id, src)
            ts = wait_done(peer.host_ns, pb.home, {src.name}, "in")
            rate_in = mb_s(this_size, span(ts))
            out = make_file(tmp / "bench-out.bin", this_size)
            os.sync()
            pb.cli("share", "--no-wait", peer.id, str(out), timeout=900)
            try:
                ts = wait_done(peer.host_ns, pb.home, {out.name}, "out")
                rate_out = mb_s(this_size, span(ts))
                wait_for(lambda: (peer.downloads() / out.name).exists(), 120, "file at the peer")
            except (RuntimeError, AssertionError) as exc:
                print(f"PhoneBridge -> {peer.name}: FAILED: {exc}")
                rate_out = float("nan")
            print(f"{peer.name} -> PhoneBridge, {this_size // MIB} MiB: {rate_in:.0f} MB/s; "
                  f"PhoneBridge -> {peer.name}: {rate_out:.0f} MB/s (PhoneBridge's transfer times)")
            print(json.dumps({peer.name: {"in": rate_in, "out": rate_out,
                                          "size_mib": this_size // MIB}}))
            (peer.downloads() / out.name).unlink(missing_ok=True)
            shutil.rmtree(src.parent, ignore_errors=True)
        finally:
            pb.stop()
            peer.down()
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        WORKERS[sys.argv[2]](json.loads(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["twin", "peers"])
    parser.add_argument("--size", type=int, default=1024, help="MiB per large file (default 1024)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["e"], help="twin: only the baseline and part e")
    parser.add_argument("--keep", action="store_true", help="twin: keep the temporary folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    twin(args) if args.part == "twin" else peers(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
