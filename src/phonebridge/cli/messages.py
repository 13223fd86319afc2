"""Texts commands: messages, send, sync (search is `phonebridge search`, which includes texts).

JSON shapes (a public contract: fields are added, never renamed):
  messages DEVICE --json            [{thread_id, addresses: [str], names: [str], snippet, date (ms),
                                      unread (int), message_count, is_group, complete}], newest first
  messages DEVICE --thread ID --json [{id, thread_id, date, body, addresses, sender (str or null for
                                      own), outgoing, read, status: "received"|"pending"|"sent"|
                                      "failed", attachments: [{part_id, mime_type, name}]}], oldest first
  send DEVICE --to ADDR [--to ADDR] TEXT [--attach FILE]   exit 0 once the phone confirmed it sent;
                                      1 when it failed or was not confirmed in time
  sync DEVICE --json                {state, threads, messages, threads_complete}
"""

from __future__ import annotations

import argparse
import base64
import datetime
import mimetypes
from pathlib import Path
from urllib.parse import quote

from .client import ApiClient, CliError
from .common import print_json, resolve_device

SEND_TIMEOUT = 60.0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("messages", help="DEVICE's text threads, or one thread's messages")
    p.add_argument("device")
    p.add_argument("--thread", type=int, metavar="ID", help="show this thread's messages")
    p.add_argument("--limit", type=int, metavar="N", help="with --thread: only the newest N")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("send", help="send a text through DEVICE; waits until the phone sent it",
                       usage="phonebridge send DEVICE --to ADDRESS [--to ADDRESS ...] TEXT "
                       "[--attach FILE] [--sim SUB_ID] [--timeout S] [--json]")
    p.add_argument("device")
    # TEXT may come after the options: argparse cannot intermix positionals with a plain
    # parse_args, so the rest is parsed by send_parser() with parse_intermixed_args.
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p = sub.add_parser("sync", help="DEVICE's texts sync state (--now: sync again)")
    p.add_argument("device")
    p.add_argument("--now", action="store_true", help="start a sync now")
    p.add_argument("--json", action="store_true")


def _path(device: dict, rest: str = "") -> str:
    return f"/api/devices/{quote(device['id'], safe='')}{rest}"


def _when(ms: int | None) -> str:
    if not ms:
        return "?"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _one_line(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_messages(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    if args.thread is not None:
        query = f"?limit={args.limit}" if args.limit else ""
        items = client.get(_path(device, f"/messages/{args.thread}{query}"))
        if args.json:
            print_json(items)
            return 0
        if not items:
            print(f"No messages in thread {args.thread}.")
            return 0
        for m in items:
            who = "me" if m["outgoing"] else (m["sender"] or "?")
            flag = "" if m["status"] in ("received", "sent") else f" [{m['status']}]"
            parts = "".join(f" [{a['mime_type']}: {a['name']}]" for a in m["attachments"])
            print(f"{_when(m['date'])}  {who}: {m['body']}{parts}{flag}")
        return 0
    threads = client.get(_path(device, "/messages"))
    if args.json:
        print_json(threads)
        return 0
    if not threads:
        print(f"No texts from {device['name']} yet.")
        return 0
    for t in threads:
        unread = f" ({t['unread']} unread)" if t["unread"] else ""
        print(f"{t['thread_id']:>6}  {_when(t['date'])}  {', '.join(t['names'])}{unread}: "
              f"{_one_line(t['snippet'], 60)}")
    return 0


def send_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="phonebridge send DEVICE")
    p.add_argument("text", nargs="?", default="")
    p.add_argument("--to", action="append", required=True, metavar="ADDRESS",
                   help="recipient number (repeat for a group message)")
    p.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach a file (MMS)")
    p.add_argument("--sim", type=int, metavar="SUB_ID", help="SIM subscription id")
    p.add_argument("--timeout", type=float, default=SEND_TIMEOUT, help="seconds to wait for the phone")
    p.add_argument("--json", action="store_true")
    return p


def cmd_send(client: ApiClient, args: argparse.Namespace) -> int:
    args = argparse.Namespace(device=args.device, **vars(send_parser().parse_intermixed_args(args.rest)))
    device = resolve_device(client, args.device)
    attachments = []
    for name in args.attach:
        path = Path(name).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        attachments.append({"name": path.name, "mime_type": mime, "data": base64.b64encode(data).decode()})
    if not args.text and not attachments:
        raise CliError("nothing to send: give TEXT or --attach FILE")
    body = {"addresses": args.to, "body": args.text, "attachments": attachments,
            "sub_id": args.sim, "timeout": args.timeout}
    result = client.post(_path(device, "/messages/send"), body, timeout=args.timeout + 10)
    if args.json:
        print_json(result)
    if result["status"] != "sent":
        raise CliError(f"{device['name']} could not send the message ({result['status']})")
    if not args.json:
        print(f"Sent to {', '.join(args.to)} through {device['name']}.")
    return 0


def cmd_sync(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    if args.now:
        client.post(_path(device, "/sync"))
    state = client.get(_path(device, "/sync"))
    if args.json:
        print_json(state)
        return 0
    print(f"{device['name']}: {state['state']}, {state['messages']} messages in {state['threads']} "
          f"threads ({state['threads_complete']} complete)")
    return 0


COMMANDS = {"messages": cmd_messages, "send": cmd_send, "sync": cmd_sync}
