#!/usr/bin/env python3
"""Benchmark of the gallery: a 10,000-photo phone over a veth link.

    sudo flock /tmp/phonebridge-twinhosts.lock uv run python bench/photos.py [--photos N]

Over the veth of shared/net/twinhosts.sh (twin-a = the demo phone with its SFTP server, twin-b =
the daemon; a client in twin-b calls the daemon's API as the web UI does). Figures printed, nothing
asserted; MB = 10^6 bytes.
  a. baseline: the bytes of the pulled photos over one stdlib TLS connection (bench/transfer.py's
     workers), memory to memory, twin-a -> twin-b;
  b. time to first screen on a cold daemon (empty index, empty thumbnail cache): GET the first 60
     photos, then their 60 thumbnails, 6 requests at a time (a browser's connections per host);
  c. the same screen again (index and thumbnails cached);
  d. thumbnails per second after that: the next 600 thumbnails, cold, 6 at a time;
  e. once every photo's date is read (the gallery's background task), pull of 500 photos into the
     download folder (`POST /api/devices/ID/pull`): MB/s from the request to the last transfer
     done, against the baseline; then 100 full-size photos (4000x3000), also with plain asyncssh
     `mget` from the same phone (the cost of SFTP and of the demo phone's Python SSH server).

Network rule: only the twin-a/twin-b namespaces; the daemon gets --bind and --no-discovery.
Processes started here are ended by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(REPO / "src"))

from transfer import (  # noqa: E402 - bench/transfer.py: the namespaces, workers and helpers
    BASELINE_PORT, IP_A, IP_B, NS_A, NS_B, TWINHOSTS, Procs, mb_s, pair_first_device, read_json,
    start_daemon, stdin_commands, twin_up, worker_tls_client, worker_tls_server,
)

SCREEN = 60
PARALLEL = 6
NEXT_THUMBNAILS = 600
PULL = 500
PAGE = 200
FULL_SIZE = 100
"""Full-size photos for the second pull."""
FULL_SIZE_FOLDER = "/storage/emulated/0/DCIM/FullSize"
"""Items per listing request when the bench needs more than a screen."""


# -- workers (run inside a namespace: `photos.py _worker KIND JSON`) ---------------------------


def worker_phone(p: dict[str, Any]) -> None:
    asyncio.run(_phone(p))


async def _phone(p: dict[str, Any]) -> None:
    from phonebridge.demo.phone import DemoPhone
    from phonebridge.demo.storage import seed_storage

    start = time.perf_counter()
    fs = Path(p["home"]) / "fs"
    seed_storage(fs, photos=p["photos"])
    # Full-size camera photos (4000x3000, ~2.4 MB) in a folder of their own, for the second pull.
    other = Path(p["home"]) / "full-size"
    seed_storage(other, photos=FULL_SIZE, photo_size=(4000, 3000), seed=2)
    target = fs / "storage" / "emulated" / "0" / "DCIM" / "FullSize"
    target.mkdir(exist_ok=True)
    for photo in (other / "storage" / "emulated" / "0" / "DCIM" / "Camera").glob("*.jpg"):
        os.replace(photo, target / photo.name)
    seeded = time.perf_counter() - start
    phone = DemoPhone(Path(p["home"]), name="Bench Phone", storage=p["photos"])
    await phone.start(p["host"], p["port"], None)
    while not phone.is_paired:
        await asyncio.sleep(0.05)
    print(json.dumps({"paired": phone.device_id, "seeded_seconds": seeded}), flush=True)
    loop = asyncio.get_running_loop()
    from phonebridge.demo.sftp import SftpFeature

    while (line := await loop.run_in_executor(None, sys.stdin.readline)).strip() == "sftp-port":
        print(json.dumps({"port": phone.feature(SftpFeature).server_port}), flush=True)
    await phone.stop()


def worker_client(p: dict[str, Any]) -> None:
    """In twin-b: calls the daemon's API like the web UI, one JSON command per stdin line."""
    asyncio.run(_client(p))


async def _client(p: dict[str, Any]) -> None:
    import httpx

    base = f"http://127.0.0.1:{p['api_port']}"
    headers = {"Authorization": f"Bearer {p['token']}"}
    device = p["device"]
    limits = httpx.Limits(max_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as http:

        async def page(offset: int, limit: int) -> dict[str, Any]:
            r = await http.get(f"/api/devices/{device}/photos",
                               params={"offset": offset, "limit": limit})
            r.raise_for_status()
            return r.json()

        async def items(offset: int, count: int) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            while len(got) < count:
                chunk = (await page(offset + len(got), min(PAGE, count - len(got))))["items"]
                if not chunk:
                    break
                got += chunk
            return got

        async def thumbnails(paths: list[str]) -> dict[str, int]:
            counts = {"ok": 0, "none": 0, "bytes": 0}
            queue = list(paths)

            async def one_connection() -> None:
                while queue:
                    path = queue.pop(0)
                    r = await http.get(f"/api/devices/{device}/photos/thumbnail",
                                       params={"path": path})
                    if r.status_code == 200:
                        counts["ok"] += 1
                        counts["bytes"] += len(r.content)
                    else:
                        counts["none"] += 1

            await asyncio.gather(*(one_connection() for _ in range(PARALLEL)))
            return counts

        async for cmd in stdin_commands():
            start = time.perf_counter()
            if cmd["cmd"] == "screen":
                listing = await page(cmd["offset"], SCREEN)
                listed = time.perf_counter() - start
                counts = await thumbnails([x["path"] for x in listing["items"]])
                print(json.dumps({"listed": listed, "seconds": time.perf_counter() - start,
                                  "total": listing["total"], "items": len(listing["items"]),
                                  **counts}), flush=True)
            elif cmd["cmd"] == "thumbnails":
                listed = await items(cmd["offset"], cmd["count"])
                start = time.perf_counter()
                counts = await thumbnails([x["path"] for x in listed])
                print(json.dumps({"seconds": time.perf_counter() - start, **counts}), flush=True)
            elif cmd["cmd"] == "pull":
                if "folder" in cmd:
                    r = await http.get(f"/api/devices/{device}/phone-files",
                                       params={"path": cmd["folder"]})
                    r.raise_for_status()
                    photos = [x for x in r.json()["entries"] if not x["is_dir"]]
                else:
                    photos = [x for x in await items(cmd["offset"], cmd["count"])
                              if x["kind"] == "image"]
                start = time.perf_counter()
                r = await http.post(f"/api/devices/{device}/pull",
                                    json={"paths": [x["path"] for x in photos], "to": cmd["to"]})
                r.raise_for_status()
                ids = {t["id"] for t in r.json()["transfers"]}
                while True:
                    ts = [t for t in (await http.get("/api/transfers")).json() if t["id"] in ids]
                    if ts and all(t["state"] != "active" for t in ts):
                        break
                    await asyncio.sleep(0.05)
                took = time.perf_counter() - start
                print(json.dumps({"seconds": took, "files": len(ts),
                                  "done": sum(t["state"] == "done" for t in ts),
                                  "bytes": sum(t["size"] for t in ts if t["state"] == "done"),
                                  "failed": [t.get("error") for t in ts if t["state"] != "done"][:3]}),
                      flush=True)
            elif cmd["cmd"] == "settle":  # until every header is read (the background task)
                while not (await page(0, 1))["complete"]:
                    await asyncio.sleep(0.2)
                print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
            elif cmd["cmd"] == "sftp-baseline":
                # The same files with plain asyncssh (the daemon's key, its pipelining defaults, 4
                # files at once like the pull): the cost of SFTP and of this phone's server.
                import asyncssh

                async with asyncssh.connect(
                        cmd["host"], cmd["port"], username="kdeconnect", known_hosts=None,
                        client_keys=[asyncssh.read_private_key(cmd["key"])],
                        agent_path=None, config=()) as conn, conn.start_sftp_client() as sftp:
                    names = [n for n in await sftp.listdir(cmd["folder"]) if n.endswith(".jpg")]
                    start = time.perf_counter()
                    await sftp.mget([f"{cmd['folder']}/{n}" for n in names], cmd["to"],
                                    max_requests=128)
                    took = time.perf_counter() - start
                total = sum(os.path.getsize(os.path.join(cmd["to"], n)) for n in names)
                print(json.dumps({"seconds": took, "bytes": total, "files": len(names)}), flush=True)
            elif cmd["cmd"] == "quit":
                break


WORKERS = {"tls_server": worker_tls_server, "tls_client": worker_tls_client,
           "phone": worker_phone, "client": worker_client}


class Workers(Procs):
    def worker(self, ns: str, kind: str, params: dict[str, Any]):  # noqa: ANN201
        return self.start(ns, [sys.executable, str(HERE), "_worker", kind, json.dumps(params)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def ask(proc: subprocess.Popen, obj: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(obj) + "\n")
    proc.stdin.flush()
    return read_json(proc, timeout)


def main(args: argparse.Namespace) -> None:
    brought_up = twin_up()
    procs = Workers()
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-photos-"))
    results: dict[str, float] = {}
    print(f"load average {os.getloadavg()[0]:.2f}; {args.photos} photos on the phone")
    try:
        downloads = tmp / "downloads"
        home, port = start_daemon(procs, tmp, downloads)
        phone = procs.worker(NS_A, "phone", {"home": str(tmp / "phone"), "host": IP_B,
                                             "port": port, "photos": args.photos})
        phone_id = pair_first_device(home)
        seeded = read_json(phone, 1800)
        print(f"   (seeding {args.photos} photos took {seeded['seeded_seconds']:.1f} s; not timed below)")
        token = (home / "api-token").read_text().strip()
        api_port = json.loads((home / "daemon.json").read_text())["api_port"]
        client = procs.worker(NS_B, "client", {"api_port": api_port, "token": token,
                                               "device": phone_id})

        first = ask(client, {"cmd": "screen", "offset": 0})
        results["first_screen"] = first["seconds"]
        print(f"b. first screen, cold: {first['seconds']:.2f} s (listing of {first['total']} "
              f"media {first['listed']:.2f} s, then {first['ok']} thumbnails, {first['none']} "
              f"without preview); target < 2 s")
        again = ask(client, {"cmd": "screen", "offset": 0})
        results["cached_screen"] = again["seconds"]
        print(f"c. the same screen again (dates of the rest still being read): "
              f"{again['seconds']:.3f} s")
        rate = ask(client, {"cmd": "thumbnails", "offset": SCREEN, "count": NEXT_THUMBNAILS})
        results["thumbnails_per_s"] = rate["ok"] / rate["seconds"]
        print(f"d. next {NEXT_THUMBNAILS} thumbnails, cold: {rate['seconds']:.2f} s = "
              f"{results['thumbnails_per_s']:.0f} thumbnails/s ({rate['bytes'] / max(rate['ok'], 1) / 1024:.1f} KiB each)")

        settled = ask(client, {"cmd": "settle"}, 1800)
        results["all_dates"] = first["seconds"] + again["seconds"] + rate["seconds"] + settled["seconds"]
        print(f"   every photo's date read (background, while c and d ran) about "
              f"{results['all_dates']:.0f} s after the first request")
        idle = ask(client, {"cmd": "screen", "offset": 0})
        results["cached_screen_idle"] = idle["seconds"]
        print(f"c. the first screen again, the gallery idle: {idle['seconds']:.3f} s")
        def pull(label: str, command: dict[str, Any]) -> dict[str, Any]:
            got = ask(client, {"cmd": "pull", **command})
            if got["failed"]:
                print(f"   pull failures: {got['failed']}")
            got["rate"] = rate = mb_s(got["bytes"], got["seconds"])
            print(f"{label} {got['done']}/{got['files']}, {got['bytes'] / 1e6:.0f} MB: "
                  f"{got['seconds']:.2f} s = {rate:.0f} MB/s, "
                  f"{got['done'] / got['seconds']:.0f} photos/s")
            return got

        pulled = pull("e. pull of photos", {
            "offset": min(1000, args.photos // 2), "count": PULL, "to": str(downloads)})
        full = pull("   pull of full-size photos (4000x3000)", {
            "folder": FULL_SIZE_FOLDER, "to": str(downloads / "full")})
        results["pull"], results["pull_full_size"] = pulled["rate"], full["rate"]

        assert phone.stdin is not None
        phone.stdin.write("sftp-port\n")
        phone.stdin.flush()
        sftp_port = read_json(phone)["port"]
        (downloads / "plain").mkdir()
        plain = ask(client, {"cmd": "sftp-baseline", "host": IP_A, "port": sftp_port,
                             "key": str(home / "private_key.pem"), "folder": FULL_SIZE_FOLDER,
                             "to": str(downloads / "plain")})
        results["plain_sftp_full_size"] = mb_s(plain["bytes"], plain["seconds"])
        print(f"   plain asyncssh mget of the same {plain['files']} full-size photos: "
              f"{results['plain_sftp_full_size']:.0f} MB/s; PhoneBridge's pull = "
              f"{results['pull_full_size'] / results['plain_sftp_full_size']:.2f}x")

        # a. the raw TLS baseline for the same numbers of bytes, same link, same run
        from phonebridge.identity_store import load_or_create_identity

        (tmp / "baseline-id").mkdir()
        cert, key = load_or_create_identity(tmp / "baseline-id").files
        for name, nbytes in (("pull", pulled["bytes"]), ("pull_full_size", full["bytes"])):
            server = procs.worker(NS_B, "tls_server", {"host": IP_B, "port": BASELINE_PORT,
                                                       "size": nbytes, "cert": cert, "key": key})
            read_json(server)
            procs.worker(NS_A, "tls_client", {"host": IP_B, "port": BASELINE_PORT, "size": nbytes})
            got = read_json(server)
            results[f"baseline_{name}"] = mb_s(got["bytes"], got["seconds"])
            print(f"a. raw Python TLS, the same {got['bytes'] / 1e6:.0f} MB as one stream: "
                  f"{results[f'baseline_{name}']:.0f} MB/s; {name} = "
                  f"{results[name] / results[f'baseline_{name}']:.2f}x")
        print(json.dumps({"photos": results}))
        if args.keep:
            print(f"kept {tmp}")
    finally:
        procs.end_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        if brought_up:
            subprocess.run([str(TWINHOSTS), "down"], timeout=60, check=False)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_worker":
        WORKERS[sys.argv[2]](json.loads(sys.argv[3]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    main(parser.parse_args())
