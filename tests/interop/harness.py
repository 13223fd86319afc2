"""Drivers for the real peers (../shared/peers) and for PhoneBridge inside their host namespace.

Everything runs inside the network namespaces the peer scripts create: the peer daemon in its own
namespace, PhoneBridge (daemon and CLI) in the host-side one via `ip netns exec`. Nothing here binds
or broadcasts in the root namespace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PHONEBRIDGE_SHARED", REPO.parent / "shared"))
PEERS = SHARED / "peers"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def run(cmd: list[str], *, timeout: float = 60, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # cwd /tmp: KDE 22.12 saves a shared text as kdeconnect-XXXXXX.txt in its working directory.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/tmp",
                          env={**os.environ, **env} if env else None)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class Peer:
    """Common verbs of the three peer scripts; subclasses fill in what differs."""

    name: str
    script: str
    host_ns: str
    host_ip: str
    peer_ip: str
    protocol_version: int
    device_name: str
    has_mdns = False
    monitor_log: Path

    def __init__(self) -> None:
        self.id = ""

    @property
    def path(self) -> str:
        return str(PEERS / self.script)

    def sh(self, *args: str, timeout: float = 60, check: bool = True,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run([self.path, *args], timeout=timeout, check=check, env=env)

    def installed(self) -> bool:
        raise NotImplementedError

    def up(self) -> str:
        out = self.sh("up", timeout=120).stdout.strip().splitlines()
        self.id = out[-1].strip()
        assert re.fullmatch(r"[A-Za-z0-9_]{32,38}", self.id), out
        return self.id

    def down(self) -> None:
        self.sh("down", timeout=120, check=False)

    def down_clean(self) -> None:
        """Down, forgetting what earlier test modules left behind (before a module's `up`)."""
        self.down()

    def restart(self) -> None:
        """Stop only the peer daemon (namespaces and our daemon stay), then start it again."""
        pid = self.daemon_pid()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 15, "the peer daemon to exit")
        time.sleep(0.5)
        assert self.up() == self.id

    def daemon_pid(self) -> int:
        raise NotImplementedError

    # what a user does on the peer
    def request_pair(self, device_id: str) -> None:
        self.sh("cli", "--pair", "-d", device_id)

    def accept_pair(self, device_id: str) -> None:
        self.sh("accept-pair", device_id, timeout=40)

    def unpair(self, device_id: str) -> None:
        self.sh("cli", "--unpair", "-d", device_id)

    def ping(self, device_id: str, message: str) -> None:
        self.sh("cli", "-d", device_id, "--ping-msg", message)

    def refresh(self) -> None:
        self.sh("cli", "--refresh")

    def verification_keys(self, device_id: str) -> set[str]:
        """The key(s) the peer shows for the current or last pairing with `device_id`."""
        raise NotImplementedError

    def is_paired(self, device_id: str) -> bool:
        raise NotImplementedError

    def sees(self, device_id: str) -> bool:
        out = self.sh("cli", "-l", check=False, timeout=30).stdout
        return any(device_id in line and re.search(r"\breachable\)", line)
                   for line in out.splitlines())

    # sharing (tests/interop/test_share.py)
    def share_root(self) -> Path:
        """A host folder the peer can read, for files it shares."""
        raise NotImplementedError

    def downloads(self) -> Path:
        """Where the peer saves files shared with it (HOME/Downloads), as a host path."""
        raise NotImplementedError

    def peer_path(self, host_path: Path) -> str:
        """`host_path` as the peer daemon sees it."""
        return str(host_path)

    def prepare_share(self, device_id: str) -> None:
        """Anything the peer needs before the share tests (paired with `device_id`)."""

    def share(self, device_id: str, *host_paths: Path) -> None:
        # One call per file: kdeconnect-cli takes only the last of repeated --share options; calls
        # in quick succession join the peer's running upload job (a batch, as its UI makes).
        for path in host_paths:
            self.sh("cli", "-d", device_id, "--share", self.peer_path(path))

    def share_text(self, device_id: str, text: str) -> None:
        self.sh("cli", "-d", device_id, "--share-text", text)

    def share_url(self, device_id: str, url: str) -> None:
        self.sh("cli", "-d", device_id, "--share", url)

    def ping_received(self, message: str) -> bool:
        try:
            return message in self.monitor_log.read_text(errors="replace")
        except FileNotFoundError:
            return False


class KdeConnect7(Peer):
    name = "kdeconnect-22.12"
    script = "kdeconnect-peer.sh"
    host_ns, host_ip, peer_ip = "kc-host", "10.77.0.1", "10.77.0.2"
    protocol_version = 7
    device_name = "kc-lab-peer"
    state = Path(os.environ.get("KC_STATE", "/tmp/kc-peer"))

    def __init__(self) -> None:
        super().__init__()
        self.monitor_log = self.state / "dbus-monitor-pb.log"
        self._monitor: subprocess.Popen | None = None

    def installed(self) -> bool:
        return shutil.which("kdeconnect-cli") is not None

    def up(self) -> str:
        device_id = super().up()
        if self._monitor is None or self._monitor.poll() is not None:
            # 22.12's script runs no bus monitor: a ping shows only as a Notify call on its bus.
            log = open(self.monitor_log, "ab")
            self._monitor = subprocess.Popen(
                [self.path, "exec-peer", "dbus-monitor", "--session",
                 "interface='org.freedesktop.Notifications'"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        return device_id

    def down(self) -> None:
        if self._monitor is not None:
            self._monitor.terminate()
            self._monitor.wait(5)
            self._monitor = None
        super().down()

    def daemon_pid(self) -> int:
        return int((self.state / "kdeconnectd.pid").read_text())

    def share_root(self) -> Path:
        return self.state / "share-src"

    def downloads(self) -> Path:
        return self.state / "home" / "Downloads"

    def _device_call(self, device_id: str, method: str) -> str:
        out = self.sh("dbus-send", "--print-reply=literal", "--dest=org.kde.kdeconnect",
                      f"/modules/kdeconnect/devices/{device_id}",
                      f"org.kde.kdeconnect.device.{method}", check=False).stdout
        return out.strip()

    def verification_keys(self, device_id: str) -> set[str]:
        # 22.12 returns the whole SHA-256 as a byte array; the code users compare is its start.
        out = self._device_call(device_id, "verificationKey")
        match = re.search(r"([0-9a-fA-F]{64})", out)
        return {match.group(1)[:8].upper()} if match else set()

    def is_paired(self, device_id: str) -> bool:
        return self._device_call(device_id, "isTrusted").endswith("true")


class KdeConnect8(Peer):
    name = "kdeconnect-25.04"
    script = "kdeconnect8-peer.sh"
    host_ns, host_ip, peer_ip = "kc8-host", "10.88.0.2", "10.88.0.1"
    protocol_version = 8
    device_name = "kc8-peer"
    has_mdns = True
    state = Path(os.environ.get("KC8_DIR", "/tmp/kc8"))

    def __init__(self) -> None:
        super().__init__()
        self.monitor_log = self.state / "log" / "dbus-monitor.log"

    def installed(self) -> bool:
        return (self.state / "root" / "usr" / "bin" / "kdeconnectd").exists()

    def daemon_pid(self) -> int:
        return int((self.state / "run" / "kdeconnectd.pid").read_text())

    def share_root(self) -> Path:
        return self.state / "root" / "kc8" / "share"

    def downloads(self) -> Path:
        return self.state / "root" / "kc8" / "home" / "Downloads"

    def peer_path(self, host_path: Path) -> str:
        return "/" + str(host_path.relative_to(self.state / "root"))

    def _props(self, device_id: str) -> dict[str, str]:
        out = self.sh("verification-key", device_id, check=False).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def verification_keys(self, device_id: str) -> set[str]:
        key = self._props(device_id).get("verificationKey")
        return {key} if key else set()

    def is_paired(self, device_id: str) -> bool:
        return self._props(device_id).get("isPaired") == "true"

    def send_clipboard(self, device_id: str, content: str | None = None) -> None:
        """D-Bus `sendClipboard` of its clipboard plugin: its own clipboard, or `content` as-is."""
        self.sh("dbus-send", "--print-reply", "--dest=org.kde.kdeconnect",
                f"/modules/kdeconnect/devices/{device_id}/clipboard",
                "org.kde.kdeconnect.device.clipboard.sendClipboard",
                *([f"string:{content}"] if content is not None else []))


class GSConnect(Peer):
    name = "gsconnect-62"
    script = "gsconnect-peer.sh"
    host_ns, host_ip, peer_ip = "gsc-host", "10.66.0.2", "10.66.0.1"
    protocol_version = 8
    device_name = "gsc-peer"
    state = Path(os.environ.get("GSC_DIR", "/tmp/gsc"))

    def __init__(self) -> None:
        super().__init__()
        self.monitor_log = self.state / "log" / "dbus-monitor.log"
        self.last_key: str | None = None

    def installed(self) -> bool:
        return (self.state / "root" / "usr" / "bin" / "gjs").exists()

    def down_clean(self) -> None:
        # GSConnect keeps every paired device in its settings and, every 5 s, sends its identity to
        # each one that is not connected: devices paired by earlier modules (other PhoneBridge ids
        # at our address) would make it dial us unasked. Start each module from a fresh install.
        self.sh("down", timeout=120, check=False, env={"GSC_PURGE_ON_DOWN": "1"})

    def daemon_pid(self) -> int:
        return int((self.state / "run" / "gjs.pid").read_text())

    def share_root(self) -> Path:
        return self.state / "root" / "gsc" / "share"

    def downloads(self) -> Path:
        return self.state / "root" / "gsc" / "home" / "Downloads"

    def peer_path(self, host_path: Path) -> str:
        return "/" + str(host_path.relative_to(self.state / "root"))

    def prepare_share(self, device_id: str) -> None:
        # Without a notification server GSConnect forwards its own "Transferring File" toasts to
        # devices that accept kdeconnect.notification, and such a write colliding with the share
        # packet fails the share (see share()). Turn that forwarding off for our device: its
        # GSettings keyfile backend watches the file, so the running service picks it up.
        keyfile = self.state / "root" / "gsc" / "home" / ".config" / "glib-2.0" / "settings" / "keyfile"
        section = f"[org/gnome/shell/extensions/gsconnect/device/{device_id}/plugin/notification]"
        lines = keyfile.read_text().splitlines()
        lines = [line for line in lines if line != "send-notifications=false"]
        if section in lines:
            lines.insert(lines.index(section) + 1, "send-notifications=false")
        else:
            lines += ["", section, "send-notifications=false"]
        keyfile.write_text("\n".join(lines) + "\n")
        time.sleep(1)

    def share(self, device_id: str, *host_paths: Path) -> None:
        # One shareFile action per file (GSConnect has no batch verb). GSConnect 62 fails a share
        # at once when another packet is being written to the link at that moment ("Stream has
        # outstanding operation" in its log; prepare_share() removes the usual cause): retry then.
        log = self.state / "log" / "peer.log"
        for path in host_paths:
            for _attempt in range(3):
                offset = log.stat().st_size if log.exists() else 0
                self.sh("share", device_id, self.peer_path(path))
                time.sleep(0.5)
                with open(log, "rb") as fh:
                    fh.seek(offset)
                    if b"outstanding operation" not in fh.read():
                        break

    def share_url(self, device_id: str, url: str) -> None:
        self.sh("action", device_id, "shareUri", f"'{url}'")

    def request_pair(self, device_id: str) -> None:
        self.sh("pair", device_id)

    def accept_pair(self, device_id: str) -> None:
        out = self.sh("accept-pair", device_id, timeout=40).stdout
        match = re.search(r"verificationKey=(\w+)", out)
        self.last_key = match.group(1) if match else None

    def unpair(self, device_id: str) -> None:
        self.sh("unpair", device_id)

    def ping(self, device_id: str, message: str) -> None:
        self.sh("ping", device_id, message)

    def refresh(self) -> None:
        self.sh("refresh")

    def verification_keys(self, device_id: str) -> set[str]:
        # GSConnect zeroes its timestamp once a request is answered (NOTES.md): while its own
        # request is pending `verificationKey` is right; for ours, the key of its pair-request
        # notification (`lastRequestKey`, also printed by accept-pair).
        out = self.sh("verification-key", device_id, check=False).stdout
        keys = set(re.findall(r"(?:verificationKey|lastRequestKey)=([0-9A-F]{8})", out))
        return keys | ({self.last_key} if self.last_key else set())

    def _device(self, device_id: str) -> dict[str, str]:
        out = self.sh("devices", check=False).stdout
        for line in out.splitlines():
            if line.startswith(device_id):
                return dict(re.findall(r"(\w+)=(\S+)", line))
        return {}

    def is_paired(self, device_id: str) -> bool:
        return self._device(device_id).get("paired") == "true"

    def sees(self, device_id: str) -> bool:
        return self._device(device_id).get("connected") == "true"

    # Its clipboard is GTK's on the Xvfb display inside the root (no GNOME Shell clipboard service
    # runs), so another X client there can copy and paste; GSConnect syncs only with the per-device
    # settings send-content / receive-content on (both off by default).
    def in_root(self, *cmd: str, timeout: float = 30, background: bool = False):  # noqa: ANN201
        command = [
            "nsenter", "--target", str(self.daemon_pid()), "--mount", "--net", "--uts", "--root",
            "--wd", "/usr/bin/env", "-i", "HOME=/gsc/home", "XDG_RUNTIME_DIR=/gsc/run",
            "XDG_CONFIG_HOME=/gsc/home/.config", "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
            "GSETTINGS_BACKEND=keyfile", "DISPLAY=:66", "NO_AT_BRIDGE=1",
            "DBUS_SESSION_BUS_ADDRESS=unix:path=/gsc/run/bus", *cmd,
        ]
        if background:
            return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return run(command, timeout=timeout)

    def enable_clipboard_sync(self, device_id: str) -> None:
        path = f"/org/gnome/shell/extensions/gsconnect/device/{device_id}/plugin/clipboard/"
        for key in ("send-content", "receive-content"):
            self.in_root("gsettings", "set",
                         f"org.gnome.Shell.Extensions.GSConnect.Plugin.Clipboard:{path}", key, "true")

    GJS_CLIPBOARD = (
        "imports.gi.versions.Gtk = '3.0'; const {Gtk, Gdk, GLib} = imports.gi; Gtk.init(null);"
        "const cb = Gtk.Clipboard.get_default(Gdk.Display.get_default());"
        "if (ARGV.length) { cb.set_text(ARGV[0], -1);"
        "  GLib.timeout_add_seconds(0, 120, () => { Gtk.main_quit(); return false; }); Gtk.main(); }"
        "else { const t = cb.wait_for_text(); print(JSON.stringify(t)); }"
    )

    def copy(self, text: str) -> subprocess.Popen:
        """The user copies `text` on the peer; the returned process owns the X selection (up to
        120 s): terminate it when done."""
        return self.in_root("gjs", "-c", self.GJS_CLIPBOARD, text, background=True)

    def clipboard_text(self) -> str | None:
        return json.loads(self.in_root("gjs", "-c", self.GJS_CLIPBOARD).stdout.strip() or "null")


ALL_PEERS: list[type[Peer]] = [KdeConnect7, KdeConnect8, GSConnect]


class PhoneBridge:
    """Our daemon and CLI, run inside a peer's host namespace."""

    def __init__(self, peer: Peer, home: Path, log_path: Path) -> None:
        self.peer = peer
        self.home = home
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.id = ""

    def _netns(self) -> list[str]:
        return ["ip", "netns", "exec", self.peer.host_ns]

    def start(self, *flags: str) -> None:
        (self.home / "daemon.json").unlink(missing_ok=True)
        cmd = [*self._netns(), sys.executable, "-m", "phonebridge", "--home", str(self.home),
               "daemon", "--name", "pb-interop", "--bind", self.peer.host_ip, "--api-port", "0",
               "--log-level", "debug", *flags]
        log = open(self.log_path, "ab")
        log.write(f"\n==== start {' '.join(flags)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: (self.home / "daemon.json").exists() or self.proc.poll() is not None,
                 30, "PhoneBridge to start")
        assert self.proc.poll() is None, f"PhoneBridge exited:\n{self.log_tail()}"
        self.id = json.loads((self.home / "daemon.json").read_text())["device_id"]

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [*self._netns(), sys.executable, "-m", "phonebridge", "--home", str(self.home), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"phonebridge {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}\n--- daemon log ---\n{self.log_tail()}")
        return proc

    def cli_background(self, *args: str) -> subprocess.Popen:
        cmd = [*self._netns(), sys.executable, "-m", "phonebridge", "--home", str(self.home), *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def devices(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("devices", "--json").stdout)

    def device(self, device_id: str) -> dict[str, Any] | None:
        return next((d for d in self.devices() if d["id"] == device_id), None)

    def wait_device(self, device_id: str, predicate: Callable[[dict[str, Any]], bool],
                    timeout: float, what: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            device = self.device(device_id)
            return device if device is not None and predicate(device) else None

        try:
            return wait_for(check, timeout, what, interval=0.3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- daemon log ---\n{self.log_tail()}") from None
