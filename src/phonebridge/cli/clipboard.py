"""`phonebridge clipboard`: send text to a device's clipboard, or show the last one received.

  phonebridge clipboard DEVICE TEXT     make TEXT the device's clipboard (TEXT "-" reads stdin)
  phonebridge clipboard [--json]        the last clipboard a device sent: the text, or with --json
                                        {"device", "content", "time" (ms)} (null if none yet)
"""

from __future__ import annotations

import argparse
import sys

from .client import ApiClient, CliError
from .common import print_json, resolve_device


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clipboard", help="send TEXT to DEVICE's clipboard; without arguments show the last "
        "clipboard received",
        usage="phonebridge clipboard [--json] | phonebridge clipboard DEVICE TEXT",
    )
    # Zero or two positionals: argparse cannot say that, so main checks the count.
    p.add_argument("args", nargs="*", metavar="DEVICE TEXT",
                   help="the device and the text to send (TEXT - reads standard input)")
    p.add_argument("--json", action="store_true", help="print the last received clipboard as JSON")


def cmd_clipboard(client: ApiClient, args: argparse.Namespace) -> int:
    if len(args.args) == 2:
        wanted, text = args.args
        if text == "-":
            text = sys.stdin.read()
        device = resolve_device(client, wanted)
        client.post(f"/api/devices/{device['id']}/clipboard", {"content": text})
        if args.json:
            print_json({"device": device["id"], "sent": True})
        else:
            print(f"Sent the clipboard to {device['name']}.")
        return 0
    if args.args:
        raise CliError("usage: phonebridge clipboard DEVICE TEXT (send), or phonebridge clipboard "
                       "[--json] (the last received); quote TEXT if it has spaces", code=2)
    last = client.get("/api/clipboard")
    if args.json:
        print_json(last)
    elif last is None:
        print("No clipboard received yet.", file=sys.stderr)
    else:
        print(last["content"])
    return 0


COMMANDS = {"clipboard": cmd_clipboard}
