"""`phonebridge share`, `transfers` and `cancel` against a real daemon with the demo phone."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from test_cli import cli, demo_device, start_daemon, stop, wait_until  # noqa: F401 - the CLI test helpers

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    home = root / "home"
    proc = start_daemon(home, "--demo", "--name", "files-test", "--download-dir", str(root / "dl"))
    try:
        yield home, demo_device(home, "share"), root
    finally:
        assert stop(proc) == 0


def test_share_files_waits_and_they_arrive(demo) -> None:
    home, device, root = demo
    a = root / "a.bin"
    a.write_bytes(os.urandom(2_500_000))
    b = root / "empty.txt"
    b.write_bytes(b"")
    result = cli(home, "share", device["name"], str(a), str(b))
    assert result.returncode == 0, result.stderr
    assert "Sent 2 file(s)" in result.stdout
    assert "100.0%" in result.stderr  # the progress line
    phone_dl = home / "demo-phone" / "Download"
    got = wait_until(lambda: (phone_dl / "a.bin").exists() and (phone_dl / "empty.txt").exists())
    assert got
    assert hashlib.sha256((phone_dl / "a.bin").read_bytes()).digest() == \
        hashlib.sha256(a.read_bytes()).digest()


def test_share_text_and_url(demo) -> None:
    home, device, _ = demo
    assert cli(home, "share", device["id"], "--text", "hello phone").returncode == 0
    assert cli(home, "share", device["id"], "--url", "https://kde.org").returncode == 0


def test_transfers_json_is_the_public_contract(demo) -> None:
    home, _, _ = demo
    result = cli(home, "transfers", "--json")
    assert result.returncode == 0, result.stderr
    transfers = json.loads(result.stdout)
    assert transfers, "the earlier tests sent something"
    for t in transfers:
        assert isinstance(t["id"], str) and isinstance(t["device"], str)
        assert t["direction"] in ("in", "out")
        assert isinstance(t["name"], str) and isinstance(t["size"], int)
        assert isinstance(t["transferred"], int)
        assert t["state"] in ("active", "done", "failed", "cancelled")
        assert "path" in t
    started = [t["started"] for t in transfers]
    assert started == sorted(started, reverse=True)
    plain = cli(home, "transfers")
    assert plain.returncode == 0 and "a.bin" in plain.stdout


def test_bad_usage_and_unknown_transfer_fail_clearly(demo) -> None:
    home, device, root = demo
    missing = cli(home, "share", device["id"], str(root / "nope.bin"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    both = cli(home, "share", device["id"], "--text", "x", "--url", "https://x")
    assert both.returncode == 2
    unknown = cli(home, "cancel", "ffffffffffff")
    assert unknown.returncode == 1 and "no transfer" in unknown.stderr


def test_daemon_takes_download_dir_from_config(tmp_path) -> None:
    from phonebridge.config import load_settings

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'download_dir = "{tmp_path / "incoming"}"\n')
    assert load_settings(home).downloads == tmp_path / "incoming"
    assert load_settings(home, download_dir=str(tmp_path / "flag")).downloads == tmp_path / "flag"
    assert load_settings(tmp_path / "other").downloads.name  # the platform's Downloads folder
