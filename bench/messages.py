#!/usr/bin/env python3
"""Benchmark: texts sync, incremental sync and message search, each with a baseline.

    uv run python bench/messages.py [--messages 100000] [--search-messages 1000000] [--queries 300]

On 127.0.0.1 only (the daemon gets --bind 127.0.0.1 --no-discovery; nothing is broadcast):
  (a) Full sync: a daemon process and, in this process, the DemoPhone with a seeded history of
      MESSAGES texts (demo/sms.py, Android's paging) linked over real TLS and paired. Wall time
      from the pair request until the daemon reports the sync "synced", and the daemon's peak RSS
      (VmHWM). Baseline: the same rows inserted into a bare SQLite table (one executemany, no
      index, no FTS), and the same rows with their FTS5 index: what storing alone costs.
  (b) Incremental sync: the phone goes away, 100 texts arrive, it comes back: wall time from its
      link to "synced" again, and how many page requests that took.
  (c) Search: SEARCH_MESSAGES texts bulk-loaded into a store (MessageRepository.import_new), then
      QUERIES searches (prefixes of 1-5 letters, whole words, two words, other scripts) through
      SearchRepository, the daemon's path: p50/p95/max. Baseline: the same FTS5 MATCH with the
      newest-first ordering by date instead of by rowid (what the obvious query costs).
Nothing is asserted. Every process started here is ended by PID in `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from phonebridge.demo.phone import FEATURES, DemoPhone  # noqa: E402
from phonebridge.demo.sms import HistorySpec, SmsFeature, generate_bulk, generate_history  # noqa: E402
from phonebridge.plugins.sms import PhoneMessage  # noqa: E402
from phonebridge.store.database import Database  # noqa: E402
from phonebridge.store.messages import MessageRepository, fold_text  # noqa: E402
from phonebridge.store.search import SearchRepository  # noqa: E402

QUERIES = ["c", "ca", "caf", "cafe", "mee", "meeting", "tick", "thanks", "see you", "call me",
           "привет", "مرحب", "שלו", "你好", "καλημερα", "schon", "creme brul", "on my", "lunch", "xyzzy"]


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def phone_message(m) -> PhoneMessage:  # noqa: ANN001
    return PhoneMessage(m.kind, m.id, m.thread_id, m.date, m.body, tuple(m.addresses), m.type,
                        bool(m.read), m.sub_id, m.event, ())


class DaemonProcess:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "PHONEBRIDGE_HOME")}
        env["XDG_RUNTIME_DIR"] = str(tmp)
        self.log = open(tmp / "daemon.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "phonebridge", "--home", str(self.home), "daemon", "--bind",
             "127.0.0.1", "--no-discovery", "--api-port", "0", "--log-level", "warning",
             "--name", "bench-desktop"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tmp)

    async def api(self) -> httpx.AsyncClient:
        deadline = time.monotonic() + 30
        while True:
            try:
                port = json.loads((self.home / "daemon.json").read_text())["api_port"]
                token = (self.home / "api-token").read_text().strip()
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError((self.tmp / "daemon.log").read_text()) from None
                await asyncio.sleep(0.05)
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


async def wait_synced(api: httpx.AsyncClient, device_id: str, messages: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = (await api.get(f"/api/devices/{device_id}/sync")).json()
        except httpx.HTTPError:
            state = {}
        if state.get("state") == "synced" and state.get("messages", 0) >= messages:
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"no sync within {timeout} s: {state}")
        await asyncio.sleep(0.05)


async def sync_bench(tmp: Path, total: int) -> None:
    spec = HistorySpec(threads=max(10, total // 200), messages=total, big_thread=min(5000, total // 4), seed=42)
    sized = type("BenchSms", (SmsFeature,), {"history_spec": spec})
    features = tuple(sized if f is SmsFeature else f for f in FEATURES)
    t0 = time.perf_counter()
    history = generate_history(spec)
    print(f"  history: {len(history.messages):,} messages in {len(history.threads)} threads "
          f"(generated in {time.perf_counter() - t0:.1f} s)")
    daemon = DaemonProcess(tmp)
    phone = None
    try:
        async with await daemon.api() as api:
            status = (await api.get("/api/status")).json()
            rss_idle = vm(daemon.proc.pid, "VmRSS")
            phone = DemoPhone(tmp / "phone", features=features)
            phone.feature(SmsFeature)._history = history
            await phone.start("127.0.0.1", status["tcp_port"])
            for _ in range(500):
                if any(d["id"] == phone.device_id for d in (await api.get("/api/devices")).json()):
                    break
                await asyncio.sleep(0.02)
            start = time.perf_counter()
            await api.post(f"/api/devices/{phone.device_id}/pair", json={"wait": True, "timeout": 20})
            state = await wait_synced(api, phone.device_id, total)
            wall = time.perf_counter() - start
            peak = vm(daemon.proc.pid, "VmHWM")
            pages = phone.feature(SmsFeature).pages_answered
            print(f"(a) full sync of {state['messages']:,} messages / {state['threads']} threads over TLS: "
                  f"{wall:.2f} s ({state['messages'] / wall:,.0f} msg/s), {pages} pages; "
                  f"daemon RSS {rss_idle / 1024:.0f} MiB idle, peak {peak / 1024:.0f} MiB "
                  f"(targets < 10 s, < 150 MB)")

            # (b) incremental: away, 100 new texts, back
            await phone.stop()
            for _ in range(500):
                device = (await api.get(f"/api/devices/{phone.device_id}")).json()
                if not device["reachable"]:
                    break
                await asyncio.sleep(0.02)
            again = DemoPhone(tmp / "phone", features=features)
            feature = again.feature(SmsFeature)
            feature._history = history
            feature._next_sms = max(m.id for m in history.messages if m.kind == "sms") + 1
            feature._next_mms = max(m.id for m in history.messages if m.kind == "mms") + 1
            feature.add_offline(100)
            start = time.perf_counter()
            await again.start("127.0.0.1", status["tcp_port"])
            phone = again
            state = await wait_synced(api, again.device_id, total + 100)
            wall_inc = time.perf_counter() - start
            print(f"(b) incremental sync after 100 new messages: {wall_inc * 1000:.0f} ms from dialling "
                  f"to synced ({feature.pages_answered} page requests, incl. the list fence); "
                  f"full sync / incremental = {wall / wall_inc:.0f}x")
    finally:
        if phone is not None:
            await phone.stop()
        daemon.stop()

    # baseline: storing the same rows without PhoneBridge
    rows = [(i, "dev", m.kind, m.id, m.thread_id, m.date, m.body, json.dumps(m.addresses), m.type)
            for i, m in enumerate(history.messages)]
    for fts in (False, True):
        path = tmp / f"baseline{int(fts)}.db"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, device TEXT, kind TEXT, phone_id INT,"
                     " thread INT, date INT, body TEXT, addresses TEXT, type INT)")
        if fts:
            conn.execute("CREATE VIRTUAL TABLE f USING fts5(body, content='m', content_rowid='id',"
                         " tokenize='unicode61 remove_diacritics 2', prefix='1 2 3')")
        t0 = time.perf_counter()
        with conn:
            conn.executemany("INSERT INTO m VALUES (?,?,?,?,?,?,?,?,?)", rows)
            if fts:
                conn.executemany("INSERT INTO f (rowid, body) VALUES (?, ?)",
                                 [(r[0], fold_text(r[6])) for r in rows])
        took = time.perf_counter() - t0
        conn.close()
        label = "rows + FTS5 index" if fts else "bare rows"
        print(f"    baseline: one executemany of the same {len(rows):,} {label} into SQLite: {took:.2f} s "
              f"({len(rows) / took:,.0f} rows/s); sync / baseline = {wall / took:.1f}x")


async def search_bench(tmp: Path, total: int, queries: int) -> None:
    db = Database(tmp / "search.db")
    await db.open()
    try:
        repo = MessageRepository(db)
        t0 = time.perf_counter()
        for chunk in generate_bulk(total, threads=2000, seed=5):
            await repo.import_new("bench", [phone_message(m) for m in chunk])
        print(f"(c) {total:,} messages bulk-loaded with their FTS5 index in {time.perf_counter() - t0:.1f} s")
        search = SearchRepository(db)
        rnd = random.Random(3)
        asked = [rnd.choice(QUERIES) for _ in range(queries)]
        times: list[float] = []
        per_query: dict[str, list[float]] = {}
        hits = 0
        for q in asked:
            t = time.perf_counter()
            found = await search.search(q, kinds=["message"], limit=50)
            took = (time.perf_counter() - t) * 1000
            times.append(took)
            per_query.setdefault(q, []).append(took)
            hits += len(found)
        print(f"    search (limit 50, newest first, through the DB thread): p50 {pct(times, 0.5):.2f} ms, "
              f"p95 {pct(times, 0.95):.2f} ms, max {max(times):.2f} ms over {queries} queries "
              f"(target p95 < 20 ms); avg {hits / queries:.0f} hits")
        slow = sorted(per_query.items(), key=lambda kv: -statistics.median(kv[1]))[:4]
        print("    slowest queries (median ms): "
              + ", ".join(f"{q!r} {statistics.median(v):.1f}" for q, v in slow))

        from phonebridge.store.search import fts_query

        def by_date(conn: sqlite3.Connection, match: str) -> int:
            return len(conn.execute(
                "SELECT m.id FROM sms_messages_fts JOIN sms_messages m ON m.id = sms_messages_fts.rowid"
                " WHERE sms_messages_fts MATCH ? ORDER BY m.date DESC LIMIT 50", (match,)).fetchall())

        base: list[float] = []
        for q in asked[: max(20, queries // 5)]:
            match = fold_text(fts_query(q) or '""')
            t = time.perf_counter()
            await db.run(lambda conn, m=match: by_date(conn, m))
            base.append((time.perf_counter() - t) * 1000)
        print(f"    baseline: the same MATCH ordered by date (sorting every hit): p50 {pct(base, 0.5):.2f} ms, "
              f"p95 {pct(base, 0.95):.2f} ms over {len(base)} queries; "
              f"p95 baseline / PhoneBridge = {pct(base, 0.95) / max(pct(times, 0.95), 1e-6):.1f}x")
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--search-messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--parts", default="abc", help="which parts: a/b (sync), c (search)")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}, cpus: {os.cpu_count()}")
    tmp = Path(tempfile.mkdtemp(prefix="pb-bench-messages-"))
    try:
        if "a" in args.parts or "b" in args.parts:
            await sync_bench(tmp, args.messages)
        if "c" in args.parts:
            await search_bench(tmp, args.search_messages, args.queries)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
