"""Photos and phone files: `photos`, `pull`, `files`, `push`.

JSON shapes (a public contract: fields are added, never renamed):
  photos DEVICE --json [--limit N]   [{path, name, size, date (ms), kind: "image"|"video", width,
                                      height, folder, error}], newest first (EXIF date, else mtime)
  files DEVICE [PATH] --json         [{name, path, size, is_dir, date (ms or null)}], folders first;
                                      without PATH the storage roots ("Internal shared storage", ...)
  pull DEVICE PATH... [--to DIR] --json, push DEVICE FILE... --to PATH --json: the transfers
`pull` and `push` wait until every file is copied (progress on stderr) and exit 1 if any failed.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from .client import ApiClient, CliError
from .common import print_json, resolve_device
from .files import human, local_files, wait_for_transfers

PAGE = 500
"""Photos asked for per request (the API's largest page)."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("photos", help="DEVICE's photos and videos, newest first")
    p.add_argument("device")
    p.add_argument("--limit", type=int, metavar="N", help="only the newest N")
    p.add_argument("--refresh", action="store_true", help="list the phone's folders again")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("pull", help="copy files from DEVICE to this computer (keeps their dates)",
                       description="Copy files from DEVICE (absolute phone paths, e.g. from "
                       "`phonebridge photos` or `phonebridge files`) into DIR; waits until done, "
                       "progress on stderr.")
    p.add_argument("device")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--to", metavar="DIR", help="target folder (default: the download folder)")
    p.add_argument("--json", action="store_true", help="print the transfers as JSON at the end")
    p = sub.add_parser("files", help="list a folder of DEVICE's storage (no PATH: the storage roots)")
    p.add_argument("device")
    p.add_argument("path", nargs="?", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("push", help="copy files from this computer into a folder of DEVICE",
                       description="Copy FILEs into the phone folder PATH; waits until done, "
                       "progress on stderr.")
    p.add_argument("device")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--to", metavar="PATH", required=True, help="the phone folder, e.g. "
                   "/storage/emulated/0/Download")
    p.add_argument("--json", action="store_true", help="print the transfers as JSON at the end")


def _path(device: dict[str, Any], rest: str) -> str:
    return f"/api/devices/{quote(device['id'], safe='')}{rest}"


def _when(ms: int | None) -> str:
    if not ms:
        return "?"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _phone_path(value: str) -> str:
    if not value.startswith("/"):
        raise CliError(f"{value}: phone paths are absolute (e.g. /storage/emulated/0/DCIM)", 2)
    return value


def cmd_photos(client: ApiClient, args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1", 2)
    device = resolve_device(client, args.device)
    wanted = args.limit
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    errors: list[dict[str, Any]] = []
    refresh = args.refresh
    offset = 0
    while wanted is None or len(items) < wanted:
        size = PAGE if wanted is None else min(PAGE, wanted - len(items))
        query = urlencode({"offset": offset, "limit": size, "refresh": int(refresh)})
        page = client.request("GET", _path(device, f"/photos?{query}"), timeout=300)
        refresh = False
        offset += len(page["items"])
        # An EXIF date read meanwhile may move an item across a page boundary: list it once.
        fresh = [p for p in page["items"] if p["path"] not in seen]
        seen.update(p["path"] for p in fresh)
        items.extend(fresh)
        errors = page.get("errors") or errors
        if not page["items"] or offset >= page["total"]:
            break
    if args.json:
        print_json(items)
    elif not items:
        print(f"No photos or videos on {device['name']}.")
    else:
        for p in items:
            size = f"{p['width']}x{p['height']}" if p.get("width") and p.get("height") else ""
            flag = f"  [{p['error']}]" if p.get("error") else ""
            print(f"{_when(p['date'])}  {p['kind']:<5}  {human(p['size']):>9}  {size:>9}  "
                  f"{p['path']}{flag}")
    for e in errors:  # folders that could not be read, or why the phone's index is old
        where = f"{e['path']}: " if e.get("path") else ""
        print(f"phonebridge: {where}{e.get('reason')}", file=sys.stderr)
    return 0


def cmd_files(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    query = f"?{urlencode({'path': _phone_path(args.path)})}" if args.path else ""
    listing = client.request("GET", _path(device, f"/phone-files{query}"), timeout=120)
    entries = listing["entries"]
    if args.json:
        print_json(entries)
        return 0
    if not entries:
        print(f"{args.path} is empty." if args.path else f"{device['name']} shares no storage.")
        return 0
    for e in entries:
        if listing["path"] is None:
            print(f"{e['path']}  ({e['name']})")
            continue
        size = "<dir>" if e["is_dir"] else human(e["size"])
        name = e["name"] + ("/" if e["is_dir"] else "")
        print(f"{_when(e['date'])}  {size:>9}  {name}")
    return 0


def cmd_pull(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    body: dict[str, Any] = {"paths": [_phone_path(p) for p in args.paths]}
    if args.to:
        body["to"] = str(Path(args.to).expanduser().resolve())
    started = client.post(_path(device, "/pull"), body, timeout=120)["transfers"]
    return _finish(client, started, args.json, f"Copied {{n}} file(s), {{size}}, from {device['name']}")


def cmd_push(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    body = {"paths": local_files(args.files), "to": _phone_path(args.to)}
    started = client.post(_path(device, "/push"), body, timeout=120)["transfers"]
    return _finish(client, started, args.json,
                   f"Copied {{n}} file(s), {{size}}, to {args.to} on {device['name']}")


def _finish(client: ApiClient, started: list[dict[str, Any]], as_json: bool, summary: str) -> int:
    """Wait for the transfers, report each failure on stderr; exit status 1 if any failed."""
    final = wait_for_transfers(client, [t["id"] for t in started]) if started else []
    if as_json:
        print_json(final)
    bad = [t for t in final if t["state"] != "done"]
    for t in bad:
        print(f"phonebridge: {t['name']}: {t['state']}: {t.get('error') or ''}", file=sys.stderr)
    if not as_json:
        done = [t for t in final if t["state"] == "done"]
        if done:
            print(summary.format(n=len(done), size=human(sum(t["size"] for t in done))) + ":")
            for t in done:
                print(f"  {t.get('path') or t['name']}")
    return 1 if bad else 0


COMMANDS = {
    "photos": cmd_photos,
    "pull": cmd_pull,
    "files": cmd_files,
    "push": cmd_push,
}
