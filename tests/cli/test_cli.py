"""The CLI as a user and a script see it: a real daemon (with the demo phone) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

DEVICE_FIELDS = {
    "id": str, "name": str, "type": str, "paired": bool, "reachable": bool,
    "protocol_version": int, "pair_state": str,
}


def cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "phonebridge", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout)


def start_daemon(home: Path, *flags: str) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "test-daemon.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon", "--bind", "127.0.0.1",
         "--no-discovery", "--api-port", "0", *flags],
        stdout=log, stderr=subprocess.STDOUT,
    )


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def demo_device(home: Path, plugin: str | None = None) -> dict:
    """The demo phone's device JSON once it is paired and reachable (and has `plugin` loaded)."""

    def ready():
        result = cli(home, "devices", "--json")
        if result.returncode != 0:
            return None
        devices = json.loads(result.stdout)
        ok = devices and devices[0]["paired"] and devices[0]["reachable"]
        return devices[0] if ok and (plugin is None or plugin in devices[0]["plugins"]) else None

    return wait_until(ready)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli") / "home"
    proc = start_daemon(home, "--demo", "--name", "cli-test")
    try:
        yield home, demo_device(home)
    finally:
        assert stop(proc) == 0


def test_devices_json_is_the_public_contract(demo) -> None:
    home, _ = demo
    result = cli(home, "devices", "--json")
    assert result.returncode == 0, result.stderr
    devices = json.loads(result.stdout)
    assert isinstance(devices, list) and len(devices) == 1
    device = devices[0]
    for field, kind in DEVICE_FIELDS.items():
        assert isinstance(device[field], kind), field
    assert device["type"] == "phone" and device["protocol_version"] == 8
    assert device["pair_state"] == "paired"
    assert device["verification_key"] is None or len(device["verification_key"]) == 8
    assert device["battery"] == {"charge": 76, "charging": False}


def test_device_by_id_name_or_prefix(demo) -> None:
    home, device = demo
    for ref in (device["id"], device["name"], device["name"].upper(), device["id"][:6]):
        result = cli(home, "ping", ref, "hello")
        assert result.returncode == 0, (ref, result.stderr)
        assert "Pinged Demo Pixel" in result.stdout


def test_unknown_device_fails_clearly(demo) -> None:
    home, _ = demo
    result = cli(home, "ping", "no-such-phone")
    assert result.returncode == 1
    assert "no device 'no-such-phone'" in result.stderr and "Demo Pixel" in result.stderr


def test_ring_and_status(demo) -> None:
    home, device = demo
    assert cli(home, "ring", device["name"]).returncode == 0
    status = json.loads(cli(home, "status", "--json").stdout)
    assert status["name"] == "cli-test" and status["paired_devices"] == 1
    assert status["discovery"] is False and len(status["id"]) == 32


def test_unpair_then_pair_again(demo) -> None:
    home, device = demo
    result = cli(home, "unpair", device["id"])
    assert result.returncode == 0, result.stderr
    after = json.loads(cli(home, "devices", "--json").stdout)[0]
    assert after["paired"] is False and after["pair_state"] == "unpaired"
    refused = cli(home, "ring", device["id"])
    assert refused.returncode == 1 and "not paired" in refused.stderr
    result = cli(home, "pair", device["id"])  # the demo phone accepts at once
    assert result.returncode == 0, result.stderr
    assert "Verification key:" in result.stdout and "Paired with Demo Pixel" in result.stdout
    assert json.loads(cli(home, "devices", "--json").stdout)[0]["paired"] is True


def test_connect_to_nothing_fails_clearly(demo) -> None:
    home, _ = demo
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    result = cli(home, "connect", f"127.0.0.1:{free_port}")
    assert result.returncode == 1
    assert f"cannot connect to 127.0.0.1:{free_port}" in result.stderr
    bad = cli(home, "connect", "127.0.0.1:notaport")
    assert bad.returncode == 2 and "bad port" in bad.stderr


def test_openapi_document_lists_the_routes(demo) -> None:
    home, _ = demo
    port = json.loads((home / "daemon.json").read_text())["api_port"]
    doc = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
    for route in ("/api/devices", "/api/devices/{device_id}/pair", "/api/connect", "/api/status"):
        assert route in doc["paths"]


def test_api_requires_the_token(demo) -> None:
    home, _ = demo
    port = json.loads((home / "daemon.json").read_text())["api_port"]
    assert httpx.get(f"http://127.0.0.1:{port}/api/devices").status_code == 401
    wrong = httpx.get(f"http://127.0.0.1:{port}/api/devices", headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401


def test_commands_without_a_daemon_say_how_to_start_it(tmp_path) -> None:
    result = cli(tmp_path / "empty", "devices")
    assert result.returncode == 3
    assert "not running" in result.stderr and "phonebridge" in result.stderr


def test_api_port_in_use_ends_startup_with_advice(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "phonebridge", "--home", str(tmp_path / "h"), "daemon",
             "--bind", "127.0.0.1", "--no-discovery", "--api-port", str(port)],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 2
    assert f"API port {port}" in result.stderr and "--api-port" in result.stderr


def test_unusable_state_folder_ends_startup_with_advice(tmp_path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "phonebridge", "--home", str(not_a_folder), "daemon",
         "--bind", "127.0.0.1", "--no-discovery", "--api-port", "0"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "state folder" in result.stderr and "--home" in result.stderr


def test_broken_certificate_ends_startup_with_advice(tmp_path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "certificate.pem").write_text("not a certificate")
    (home / "private_key.pem").write_text("not a key")
    result = subprocess.run(
        [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon",
         "--bind", "127.0.0.1", "--no-discovery", "--api-port", "0"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "certificate" in result.stderr and "delete" in result.stderr


def test_identity_persists_across_restarts(tmp_path) -> None:
    home = tmp_path / "h"
    ids = []
    for _ in range(2):
        proc = start_daemon(home)
        try:
            wait_until(lambda: (home / "daemon.json").exists())
            ids.append(json.loads((home / "daemon.json").read_text())["device_id"])
        finally:
            assert stop(proc) == 0
    assert ids[0] == ids[1]
    assert oct((home / "private_key.pem").stat().st_mode & 0o777) == "0o600"
    assert not (home / "daemon.json").exists(), "a stopped daemon must remove daemon.json"
    if os.name != "nt":
        assert (home / "api-token").stat().st_mode & 0o077 == 0


def test_second_daemon_on_the_same_state_folder_is_refused(demo) -> None:
    home, _ = demo
    result = subprocess.run(
        [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon",
         "--bind", "127.0.0.1", "--no-discovery", "--api-port", "0"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "another PhoneBridge daemon already uses" in result.stderr
    assert cli(home, "devices").returncode == 0, "the first daemon must keep running"
