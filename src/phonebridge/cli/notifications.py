"""Notification and call commands: notifications, dismiss, reply, action, calls, mute, search.

JSON shapes (a public contract: fields are added, never renamed):
  notifications --json  [{id, app, title, text, time (ms), active, dismissable, can_reply,
                          actions: [str], icon, silent, device}], newest first
  calls --json          [{event: "ringing"|"talking"|"missed"|"ended", number, name, time, device}]
  search --json         [{kind: "notification", device, id, date (ms), snippet}], newest first
"""

from __future__ import annotations

import argparse
import datetime
from urllib.parse import quote, urlencode

from .client import ApiClient
from .common import print_json, resolve_device


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notifications", help="DEVICE's notifications, newest first")
    p.add_argument("device")
    p.add_argument("--active", action="store_true", help="only those still shown on the device")
    p.add_argument("--mute-app", metavar="APP", help="raise no desktop toasts for APP")
    p.add_argument("--unmute-app", metavar="APP", help="raise desktop toasts for APP again")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("dismiss", help="dismiss notification ID on DEVICE")
    p.add_argument("device")
    p.add_argument("id")
    p = sub.add_parser("reply", help="reply TEXT to notification ID on DEVICE (messaging apps)")
    p.add_argument("device")
    p.add_argument("id")
    p.add_argument("text")
    p = sub.add_parser("action", help="press ACTION of notification ID on DEVICE")
    p.add_argument("device")
    p.add_argument("id")
    p.add_argument("action")
    p = sub.add_parser("calls", help="DEVICE's calls log, newest first")
    p.add_argument("device")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("mute", help="mute DEVICE's ringer")
    p.add_argument("device")
    p = sub.add_parser("search", help="search messages, contacts and notifications of every device")
    p.add_argument("query")
    p.add_argument("--json", action="store_true")


def _when(ms: int | None) -> str:
    if not ms:
        return "?"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _path(device: dict, rest: str = "") -> str:
    return f"/api/devices/{quote(device['id'], safe='')}{rest}"


def cmd_notifications(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    for app, muted in ((args.mute_app, True), (args.unmute_app, False)):
        if app is not None:
            result = client.post(_path(device, "/notifications/mute"), {"app": app, "muted": muted})
            if not args.json:
                print(f"{'Muted' if muted else 'Unmuted'} {app}. Muted apps: "
                      f"{', '.join(result['apps']) or 'none'}")
    query = "?active=true" if args.active else ""
    items = client.get(_path(device, "/notifications") + query)
    if args.json:
        print_json(items)
        return 0
    if not items:
        print(f"No notifications from {device['name']}.")
        return 0
    for n in items:
        flags = [] if n["active"] else ["gone"]
        if n["can_reply"]:
            flags.append("reply")
        flags += [f"[{a}]" for a in n["actions"]]
        text = n["text"].replace("\n", " ")
        text = text if len(text) <= 100 else text[:99] + "…"
        print(f"{_when(n['time'])}  {n['app'] or '?'}: {n['title']}"
              f"{' — ' + text if text else ''}  {' '.join(flags)}".rstrip())
        print(f"    id {n['id']}")
    return 0


def cmd_dismiss(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    client.post(_path(device, "/notifications/dismiss"), {"id": args.id})
    print(f"Dismissed the notification on {device['name']}.")
    return 0


def cmd_reply(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    client.post(_path(device, "/notifications/reply"), {"id": args.id, "message": args.text})
    print(f"Replied through {device['name']}.")
    return 0


def cmd_action(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    client.post(_path(device, "/notifications/action"), {"id": args.id, "action": args.action})
    print(f"Pressed {args.action!r} on {device['name']}.")
    return 0


CALL_TEXT = {"ringing": "ringing", "talking": "in call", "missed": "missed", "ended": "ended"}


def cmd_calls(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    calls = client.get(_path(device, "/calls"))
    if args.json:
        print_json(calls)
        return 0
    if not calls:
        print(f"No calls from {device['name']} yet.")
        return 0
    for c in calls:
        who = c["name"] or c["number"] or "unknown number"
        if c["name"] and c["number"] and c["name"] != c["number"]:
            who = f"{c['name']} ({c['number']})"
        print(f"{_when(c['time'])}  {CALL_TEXT.get(c['event'], c['event']):8}  {who}")
    return 0


def cmd_mute(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    client.post(_path(device, "/mute"))
    print(f"Muted the ringer of {device['name']}.")
    return 0


def cmd_search(client: ApiClient, args: argparse.Namespace) -> int:
    results = client.get("/api/search?" + urlencode({"q": args.query}))
    if args.json:
        print_json(results)
        return 0
    if not results:
        print("Nothing found.")
        return 0
    names = {d["id"]: d["name"] for d in client.get("/api/devices")}
    for r in results:
        print(f"{_when(r['date'])}  {r['kind']:12}  {names.get(r['device'], r['device'])}: {r['snippet']}")
    return 0


COMMANDS = {
    "notifications": cmd_notifications,
    "dismiss": cmd_dismiss,
    "reply": cmd_reply,
    "action": cmd_action,
    "calls": cmd_calls,
    "mute": cmd_mute,
    "search": cmd_search,
}
