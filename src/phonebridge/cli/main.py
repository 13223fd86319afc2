"""`phonebridge`: start the app, run the daemon, and drive it from scripts.

This module holds the entry point, `daemon` and `open`; each feature's commands live in their own
module listed in FEATURES. Commands and their JSON fields are a public contract: add, never rename.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
import webbrowser
from pathlib import Path
from typing import Any

from phonebridge import __version__
from phonebridge.config import default_home

from . import clipboard, devices
from . import notifications
from . import files
from . import messages
from . import photos
from .client import NOT_RUNNING, ApiClient, CliError

FEATURES = (devices, clipboard, notifications, files, messages, photos)
"""Modules that add commands: each has `add_parsers(subparsers)` and `COMMANDS` (name -> handler)."""

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

    for feature in FEATURES:
        feature.add_parsers(sub)
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
    p.add_argument("--download-dir", metavar="DIR", help="where received files go "
                   "(default: your Downloads folder)")
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
        handler = next(f.COMMANDS[args.command] for f in FEATURES if args.command in f.COMMANDS)
        return handler(ApiClient(home), args) or 0
    except CliError as exc:
        print(f"phonebridge: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `phonebridge search x | head`: the reader left, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# -- the daemon ----------------------------------------------------------------------------------

def run_daemon(home: Path, args: argparse.Namespace) -> int:
    from phonebridge.app import Daemon
    from phonebridge.config import load_settings
    from phonebridge.errors import StartupError

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # asyncssh logs ~20 INFO lines per SFTP session; plugins/sftp.py logs the one that matters.
    if args.log_level != "debug":
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
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
            download_dir=str(Path(args.download_dir).expanduser().resolve()) if args.download_dir else None,
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
