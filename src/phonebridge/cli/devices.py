"""Device commands: list, status, pairing, ping, ring, connect, refresh, stop."""

from __future__ import annotations

import argparse
import time

from .client import ApiClient, CliError
from .common import device_action, print_json, resolve_device


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
