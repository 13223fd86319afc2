"""Sharing and transfers: `share DEVICE FILE...|--text T|--url U`, `transfers`, `cancel`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .client import ApiClient, CliError
from .common import print_json, resolve_device

POLL_INTERVAL = 0.2
"""Seconds between progress polls while `share` waits."""
FINAL_STATES = ("done", "failed", "cancelled")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("share", help="send files, a text or a URL to DEVICE",
                       description="Send files (one after another; waits until done, progress on "
                       "stderr), a text or a URL to DEVICE.")
    p.add_argument("device")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--text", help="send this text (the phone puts it on its clipboard)")
    p.add_argument("--url", help="send this URL (the phone offers to open it)")
    p.add_argument("--no-wait", action="store_true", help="return once the transfers started")
    p.add_argument("--json", action="store_true", help="print the transfers as JSON at the end")
    p = sub.add_parser("transfers", help="list file, text and URL transfers (newest first)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("cancel", help="cancel an active transfer")
    p.add_argument("transfer", metavar="TRANSFER", help="a transfer id (or a unique prefix)")


def cmd_share(client: ApiClient, args: argparse.Namespace) -> int:
    given = sum(x is not None and x != [] for x in (args.files, args.text, args.url))
    if given != 1:
        raise CliError("give FILE..., --text TEXT or --url URL (exactly one of them)", 2)
    device = resolve_device(client, args.device)
    if args.files:
        body: dict[str, Any] = {"paths": local_files(args.files)}
    elif args.text is not None:
        body = {"text": args.text}
    else:
        body = {"url": args.url}
    started = client.post(f"/api/devices/{device['id']}/share", body, timeout=60)["transfers"]
    if args.no_wait or not args.files:
        if args.json:
            print_json(started)
        else:
            what = "text" if args.text is not None else "URL" if args.url else f"{len(started)} file(s)"
            print(f"Sent {what} to {device['name']}." if not args.files else
                  f"Sending {what} to {device['name']}.")
        return 0
    final = wait_for_transfers(client, [t["id"] for t in started])
    if args.json:
        print_json(final)
    bad = [t for t in final if t["state"] != "done"]
    for t in bad:
        print(f"phonebridge: {t['name']}: {t['state']}: {t.get('error') or ''}", file=sys.stderr)
    if not bad and not args.json:
        total = sum(t["size"] for t in final)
        print(f"Sent {len(final)} file(s), {human(total)}, to {device['name']}.")
    return 1 if bad else 0


def local_files(names: list[str]) -> list[str]:
    """The absolute paths of FILE arguments (the daemon has its own working folder); exit status 2
    for one that is not a file."""
    paths = []
    for name in names:
        path = Path(name).expanduser()
        if not path.is_file():
            raise CliError(f"{name}: no such file", 2)
        paths.append(str(path.resolve()))
    return paths


def wait_for_transfers(client: ApiClient, ids: list[str]) -> list[dict[str, Any]]:
    """Poll until every transfer ended, drawing a progress bar on stderr when it is a terminal."""
    tty = sys.stderr.isatty()
    last_line = 0.0
    while True:
        current = [client.get(f"/api/transfers/{i}") for i in ids]
        done = all(t["state"] in FINAL_STATES for t in current)
        now = time.monotonic()
        if done or now - last_line >= (0.2 if tty else 2.0):
            last_line = now
            line = progress_line(current)
            if tty:
                width = max(20, min(120, _columns()))
                sys.stderr.write("\r" + line[: width - 1].ljust(width - 1))
                if done:
                    sys.stderr.write("\n")
            else:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()
        if done:
            return current
        time.sleep(POLL_INTERVAL)


def progress_line(transfers: list[dict[str, Any]]) -> str:
    size = sum(t["size"] for t in transfers)
    moved = sum(t["transferred"] if t["state"] != "done" else t["size"] for t in transfers)
    rate = sum(t.get("rate") or 0 for t in transfers if t["state"] == "active")
    active = next((t for t in transfers if t["state"] == "active"), None)
    finished = sum(t["state"] in FINAL_STATES for t in transfers)
    fraction = moved / size if size else (1.0 if finished == len(transfers) else 0.0)
    bar = "#" * int(fraction * 30)
    eta = f", {int((size - moved) / rate)} s left" if rate > 0 and size > moved else ""
    name = f" {active['name']}" if active else ""
    return (f"[{bar:<30}] {fraction * 100:5.1f}% {human(moved)}/{human(size)} "
            f"{human(rate)}/s{eta} ({finished}/{len(transfers)}){name}")


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        return 80


def cmd_transfers(client: ApiClient, args: argparse.Namespace) -> int:
    transfers = client.get("/api/transfers")
    if args.json:
        print_json(transfers)
        return 0
    if not transfers:
        print("No transfers yet.")
        return 0
    for t in transfers:
        arrow = "<-" if t["direction"] == "in" else "->"
        size = human(t["size"]) if t["kind"] == "file" else t["kind"]
        state = t["state"]
        if state == "active" and t["size"]:
            state = f"active {t['transferred'] * 100 // t['size']}%"
        extra = f" ({t['error']})" if t.get("error") else ""
        where = f" {t['path']}" if t.get("path") and t["direction"] == "in" else ""
        print(f"{t['id']} {arrow} {t['device_name']}: {t['name']} [{size}] {state}{extra}{where}")
    return 0


def cmd_cancel(client: ApiClient, args: argparse.Namespace) -> int:
    wanted = args.transfer
    ids = [t["id"] for t in client.get("/api/transfers") if t["id"].startswith(wanted)]
    if wanted in ids:
        ids = [wanted]
    if len(ids) != 1:
        raise CliError(f"no transfer {wanted!r}" if not ids else f"{wanted!r} is ambiguous")
    transfer = client.post(f"/api/transfers/{ids[0]}/cancel")
    print(f"Cancelled {transfer['name']}.")
    return 0


COMMANDS = {
    "share": cmd_share,
    "transfers": cmd_transfers,
    "cancel": cmd_cancel,
}
