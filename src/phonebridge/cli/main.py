"""`phonebridge`: start the app, run the daemon, and drive it from scripts.

Commands and their JSON fields are a public contract: add, never rename.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import webbrowser
from pathlib import Path
from collections.abc import Callable
from typing import Any

from phonebridge import __version__
from phonebridge.config import default_home

from .client import NOT_RUNNING, ApiClient, CliError

DAEMON_START_TIMEOUT = 20.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phonebridge",
        description="Your phone on this computer: pair, ping, ring and more, over KDE Connect's "
        "protocol. Without a command: start the daemon if needed and open the web UI.",
    )
    parser.add_argument("--version", action="version", version=f"phonebridge {__version__}")
    parser.add_argument("--home", type=Path, help="state folder (default: $PHONEBRIDGE_HOME or "
                        "the platform's user data folder)")
    parser.add_argument("--demo", action="store_true",
                        help="with no command: also run a simulated phone that pairs at once")
    parser.add_argument("--no-browser", action="store_true",
                        help="with no command: print the web UI address instead of opening it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    daemon = sub.add_parser("daemon", help="run the daemon in the foreground")
    add_daemon_options(daemon)

    p = sub.add_parser("devices", help="list known devices")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("status", help="show the daemon's status")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("pair", help="accept DEVICE's pair request, else ask it to pair and wait")
    p.add_argument("device")
    p.add_argument("--timeout", type=float, default=35.0, help="seconds to wait for the answer")
    p.add_argument("--json", action="store_true")
    for name, text in (("reject", "reject DEVICE's pair request"), ("unpair", "unpair DEVICE"),
                       ("ring", "ring DEVICE (find my phone)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("device")
    p = sub.add_parser("ping", help="send a ping to DEVICE")
    p.add_argument("device")
    p.add_argument("message", nargs="?")
    p = sub.add_parser("connect", help="link to a device by address, e.g. over a VPN")
    p.add_argument("address", metavar="HOST[:PORT]")
    p.add_argument("--json", action="store_true")
    sub.add_parser("refresh", help="announce this computer on the network again")
    sub.add_parser("stop", help="stop the daemon")
    sub.add_parser("open", help="start the daemon if needed and open the web UI")
    return parser


def add_daemon_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="device name shown to peers (default: host name)")
    p.add_argument("--bind", action="append", metavar="ADDR", default=[],
                   help="listen only on this address (repeatable; default: all)")
    p.add_argument("--discovery-address", action="append", metavar="ADDR", default=[],
                   help="send UDP identities here (repeatable; default 255.255.255.255)")
    p.add_argument("--no-discovery", action="store_true",
                   help="no UDP or mDNS discovery; link with `connect` only")
    p.add_argument("--no-mdns", action="store_true", help="no mDNS announce/browse")
    p.add_argument("--api-port", type=int, help="local API port on 127.0.0.1 (default 8716; 0 = any)")
    p.add_argument("--demo", action="store_true",
                   help="also run a simulated phone; without --bind/--discovery-address this "
                   "binds 127.0.0.1 only and turns discovery off")
    p.add_argument("--log-level", default=os.environ.get("PHONEBRIDGE_LOG", "info"),
                   choices=["debug", "info", "warning", "error"])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    home = (args.home or default_home()).expanduser()
    try:
        if args.command == "daemon":
            return run_daemon(home, args)
        if args.command in (None, "open"):
            return open_app(home, demo=args.demo, browser=not args.no_browser)
        handler = COMMANDS[args.command]
        return handler(ApiClient(home), args) or 0
    except CliError as exc:
        print(f"phonebridge: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


# -- the daemon ----------------------------------------------------------------------------------

def run_daemon(home: Path, args: argparse.Namespace) -> int:
    from phonebridge.app import Daemon
    from phonebridge.config import load_settings
    from phonebridge.errors import StartupError

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo_alone = args.demo and not args.bind and not args.discovery_address
    try:
        settings = load_settings(
            home,
            name=args.name,
            # The demo stays on loopback and announces nothing unless told otherwise.
            bind=args.bind or (["127.0.0.1"] if demo_alone else []),
            discovery_address=args.discovery_address,
            discovery=False if args.no_discovery or demo_alone else None,
            mdns=False if args.no_mdns else None,
            api_port=args.api_port,
            demo=True if args.demo else None,
        )
        asyncio.run(Daemon(settings).run())
    except StartupError as exc:
        print(f"phonebridge: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def open_app(home: Path, *, demo: bool, browser: bool) -> int:
    try:
        client = ApiClient(home, timeout=3)
        client.get("/api/status")
        if demo:
            print("phonebridge: the daemon is already running; --demo applies when it starts "
                  "(stop it first to restart with the demo phone)", file=sys.stderr)
    except CliError as exc:
        if exc.code != NOT_RUNNING:
            raise
        client = start_daemon_in_background(home, demo)
    url = client.ui_url
    print(f"PhoneBridge is running. Web UI: {url}")
    if browser and not webbrowser.open(url):
        print("(no browser could be opened here: open the address above yourself)")
    print("Stop it with `phonebridge stop`.")
    return 0


def start_daemon_in_background(home: Path, demo: bool) -> ApiClient:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = home / "daemon.log"
    (home / "daemon.json").unlink(missing_ok=True)  # left by a daemon that died; the lock decides
    command = [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon"]
    if demo:
        command.append("--demo")
    with open(log_path, "ab") as log_file:
        kwargs: dict[str, Any] = {"stdout": log_file, "stderr": log_file, "stdin": subprocess.DEVNULL}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        else:
            kwargs["start_new_session"] = True
        process = subprocess.Popen(command, **kwargs)
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise CliError("the daemon did not start:\n  " + "\n  ".join(tail))
        try:
            client = ApiClient(home, timeout=2)
            status = client.get("/api/status")
            if status.get("pid") == process.pid:
                return client
        except CliError:
            pass
        time.sleep(0.2)
    raise CliError(f"the daemon did not come up within {DAEMON_START_TIMEOUT:.0f} s; see {log_path}")


# -- client commands -------------------------------------------------------------------------------

def resolve_device(client: ApiClient, wanted: str) -> dict[str, Any]:
    """A device by exact id, by unique name (case-insensitive), or by unique id prefix."""
    devices = client.get("/api/devices")
    for device in devices:
        if device["id"] == wanted:
            return device
    by_name = [d for d in devices if d["name"].casefold() == wanted.casefold()]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(d["id"] for d in by_name)
        raise CliError(f"{len(by_name)} devices are named {wanted!r} ({ids}): use the id")
    by_prefix = [d for d in devices if d["id"].startswith(wanted)] if len(wanted) >= 4 else []
    if len(by_prefix) == 1:
        return by_prefix[0]
    known = ", ".join(f"{d['name']} ({d['id']})" for d in devices) or "none"
    raise CliError(f"no device {wanted!r}; known devices: {known}")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_devices(client: ApiClient, args: argparse.Namespace) -> int:
    devices = client.get("/api/devices")
    if args.json:
        print_json(devices)
        return 0
    if not devices:
        print("No devices yet. Open the KDE Connect app on your phone on the same network, "
              "or use `phonebridge connect HOST`.")
        return 0
    for d in devices:
        state = d["pair_state"]
        if d.get("certificate_changed"):
            state = "CERTIFICATE CHANGED (refused; `phonebridge unpair` to forget it)"
        reach = "reachable" if d["reachable"] else "unreachable"
        battery = d.get("battery")
        extra = f", battery {battery['charge']}%{' charging' if battery['charging'] else ''}" if battery else ""
        key = f", key {d['verification_key']}" if d.get("verification_key") and state != "paired" else ""
        print(f"{d['name']} ({d['id']}) {d['type']}, protocol {d['protocol_version']}: "
              f"{state}, {reach}{extra}{key}")
    return 0


def cmd_status(client: ApiClient, args: argparse.Namespace) -> int:
    status = client.get("/api/status")
    if args.json:
        print_json(status)
        return 0
    print(f"PhoneBridge {status['version']} as {status['name']} ({status['id']})")
    print(f"  API http://127.0.0.1:{status['api_port']}/, links on tcp/{status['tcp_port']}")
    print(f"  discovery: {'on' if status['discovery'] else 'off'}"
          f"{' (' + ', '.join(status['discovery_addresses']) + ')' if status['discovery'] else ''},"
          f" mDNS {'on' if status['mdns'] else 'off'}")
    print(f"  devices: {status['devices']} known, {status['paired_devices']} paired, "
          f"{status['reachable_devices']} reachable")
    return 0


def cmd_pair(client: ApiClient, args: argparse.Namespace) -> int:
    device = resolve_device(client, args.device)
    path = f"/api/devices/{device['id']}/pair"
    if device["paired"]:
        print(f"Already paired with {device['name']}.")
        return 0
    incoming = device["pair_state"] == "incoming"
    result = client.post(path, {})
    if not incoming and result["pair_state"] == "requested":
        print(f"Asked {result['name']} to pair. Verification key: {result['verification_key']}"
              " (check that the device shows the same). Waiting for an answer...", flush=True)
        result = client.post(path, {"wait": True, "timeout": args.timeout}, timeout=args.timeout + 5)
    if getattr(args, "json", False):
        print_json(result)
    if result["paired"]:
        if not getattr(args, "json", False):
            print(f"Paired with {result['name']} (verification key {result['verification_key']}).")
        return 0
    raise CliError(f"{result['name']} did not pair (state: {result['pair_state']})")


def device_action(action: str, done: str, body: Callable[[argparse.Namespace], Any] = lambda a: {}):
    """A command that posts to /api/devices/{id}/ACTION and prints DONE (with {name})."""

    def command(client: ApiClient, args: argparse.Namespace) -> int:
        device = resolve_device(client, args.device)
        client.post(f"/api/devices/{device['id']}/{action}", body(args))
        print(done.format(name=device["name"]))
        return 0

    return command


cmd_reject = device_action("reject", "Rejected the pair request of {name}.")
cmd_unpair = device_action("unpair", "Unpaired {name}.")
cmd_ping = device_action("ping", "Pinged {name}.", lambda args: {"message": args.message})
cmd_ring = device_action("ring", "Ringing {name}.")


def cmd_connect(client: ApiClient, args: argparse.Namespace) -> int:
    host, port = parse_address(args.address)
    device = client.post("/api/connect", {"host": host, "port": port}, timeout=30)
    if args.json:
        print_json(device)
    else:
        print(f"Linked to {device['name']} ({device['id']}), "
              f"{'paired' if device['paired'] else 'not paired: run `phonebridge pair ' + device['id'] + '`'}.")
    return 0


def parse_address(text: str) -> tuple[str, int]:
    host, port = text, 1716
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    if not host:
        raise CliError(f"no host in {text!r}", 2)
    return host, port


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise CliError(f"bad port in {whole!r}", 2)
    return port


def cmd_refresh(client: ApiClient, args: argparse.Namespace) -> int:
    client.post("/api/refresh")
    print("Announced.")
    return 0


def cmd_stop(client: ApiClient, args: argparse.Namespace) -> int:
    client.post("/api/shutdown")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client.get("/api/status")
        except CliError:
            print("PhoneBridge stopped.")
            return 0
        time.sleep(0.2)
    raise CliError("the daemon did not stop within 15 s")


COMMANDS = {
    "stop": cmd_stop,
    "devices": cmd_devices,
    "status": cmd_status,
    "pair": cmd_pair,
    "reject": cmd_reject,
    "unpair": cmd_unpair,
    "ping": cmd_ping,
    "ring": cmd_ring,
    "connect": cmd_connect,
    "refresh": cmd_refresh,
}
