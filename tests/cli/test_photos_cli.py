"""`phonebridge photos`, `pull`, `files` and `push` as a user and a script see them: a real daemon
with the demo phone (`--demo`), whose storage this module seeds first (hostile, so odd names and
broken files are there) and then reads through the real SFTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phonebridge.demo.storage import INTERNAL, SD_CARD, phone_to_local, seed_storage
from test_cli import cli, demo_device, start_daemon, stop, wait_until  # noqa: F401 - the CLI test helpers

pytestmark = pytest.mark.timeout(180)

PHOTO_FIELDS = {"path": str, "name": str, "size": int, "date": int, "kind": str}
ENTRY_FIELDS = {"name": str, "path": str, "size": int, "is_dir": bool}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    home = root / "home"
    fs = home / "demo-phone" / "fs"
    summary = seed_storage(fs, photos=150, hostile=True)  # the demo phone keeps a seeded tree
    proc = start_daemon(home, "--demo", "--name", "photos-test", "--download-dir", str(root / "dl"))
    try:
        yield home, demo_device(home, "sftp"), root, fs, summary
    finally:
        assert stop(proc) == 0


def test_photos_json_is_newest_first_with_the_contract_fields(demo) -> None:
    home, device, _, _, summary = demo
    result = cli(home, "photos", device["name"], "--json", "--limit", "30")
    assert result.returncode == 0, result.stderr
    photos = json.loads(result.stdout)
    assert len(photos) == 30
    for photo in photos:
        for field, kind in PHOTO_FIELDS.items():
            assert isinstance(photo[field], kind), field
        assert photo["kind"] in ("image", "video")
        assert "width" in photo and "height" in photo
    dates = [p["date"] for p in photos]
    assert dates == sorted(dates, reverse=True)
    good = [p["path"] for p in photos if p["path"] not in summary.hostile]
    assert good == summary.newest[: len(good)]
    first = photos[0] if photos[0]["path"] == summary.newest[0] else photos[1]
    assert first["date"] == summary.dates[first["path"]]
    assert (first["width"], first["height"]) in ((1024, 768), (768, 1024))

    everything = json.loads(cli(home, "photos", device["id"], "--json").stdout)
    assert [p["path"] for p in everything if p["path"] not in summary.hostile] == summary.newest
    assert any(p["kind"] == "video" for p in everything)

    table = cli(home, "photos", device["name"], "--limit", "5")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == 5 and summary.newest[0] in table.stdout
    assert "image" in table.stdout and ("1024x768" in table.stdout or "768x1024" in table.stdout)


def test_files_lists_roots_and_nested_folders(demo) -> None:
    home, device, _, fs, _ = demo
    roots = json.loads(cli(home, "files", device["name"], "--json").stdout)
    assert [(r["name"], r["path"], r["is_dir"]) for r in roots] == [
        ("Internal shared storage", INTERNAL, True), ("SD card", SD_CARD, True)]
    nested = cli(home, "files", device["name"], f"{INTERNAL}/Documents/Work/2026/Reports/Drafts", "--json")
    assert nested.returncode == 0, nested.stderr
    entries = json.loads(nested.stdout)
    for entry in entries:
        for field, kind in ENTRY_FIELDS.items():
            assert isinstance(entry[field], kind), field
        assert entry["date"] is None or isinstance(entry["date"], int)
    assert [(e["name"], e["is_dir"]) for e in entries] == [("Old", True), ("Q3 draft.txt", False)]
    draft = entries[1]
    local = phone_to_local(fs, draft["path"])
    assert draft["size"] == local.stat().st_size
    assert draft["date"] // 1000 == int(local.stat().st_mtime)

    plain = cli(home, "files", device["name"], f"{INTERNAL}/Documents/Work/2026/Reports")
    assert plain.returncode == 0
    assert "Drafts/" in plain.stdout and "Q1 report.pdf" in plain.stdout
    top = cli(home, "files", device["name"])
    assert f"{INTERNAL}  (Internal shared storage)" in top.stdout


def test_pull_lands_whole_files_with_their_dates(demo, tmp_path: Path) -> None:
    home, device, _, fs, summary = demo
    emoji = next(p for p in summary.odd_names if "🎉 party" in p)
    wanted = [*summary.newest[:3], emoji, f"{INTERNAL}/Documents/Work/2026/Reports/Q2 report.pdf"]
    target = tmp_path / "pulled"
    result = cli(home, "pull", device["name"], *wanted, "--to", str(target))
    assert result.returncode == 0, result.stderr
    assert "100.0%" in result.stderr  # the progress line
    assert "Copied 5 file(s)" in result.stdout
    for path in wanted:
        landed = target / path.rsplit("/", 1)[1]
        source = phone_to_local(fs, path)
        assert str(landed) in result.stdout
        assert landed.read_bytes() == source.read_bytes()
        assert int(landed.stat().st_mtime) == int(source.stat().st_mtime)
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no part files

    as_json = cli(home, "pull", device["id"], summary.newest[0], "--to", str(target), "--json")
    assert as_json.returncode == 0, as_json.stderr
    [transfer] = json.loads(as_json.stdout)
    assert transfer["state"] == "done" and transfer["direction"] == "in"
    assert transfer["path"].endswith(" (1).jpg")  # a clash is numbered, nothing overwritten


def test_pull_defaults_to_the_download_folder(demo) -> None:
    home, device, root, fs, summary = demo
    photo = summary.newest[5]
    result = cli(home, "pull", device["name"], photo)
    assert result.returncode == 0, result.stderr
    landed = root / "dl" / photo.rsplit("/", 1)[1]
    assert landed.read_bytes() == phone_to_local(fs, photo).read_bytes()


def test_push_copies_files_to_the_phone(demo, tmp_path: Path) -> None:
    home, device, _, fs, _ = demo
    first = tmp_path / "report for the phone.pdf"
    first.write_bytes(os.urandom(1_200_000))
    second = tmp_path / "ünïcode #2.txt"
    second.write_text("hello phone\n")
    os.utime(first, (1_700_000_000, 1_700_000_000))
    result = cli(home, "push", device["name"], str(first), str(second), "--to", f"{INTERNAL}/Download")
    assert result.returncode == 0, result.stderr
    assert "Copied 2 file(s)" in result.stdout and "100.0%" in result.stderr
    for local in (first, second):
        remote = phone_to_local(fs, f"{INTERNAL}/Download/{local.name}")
        assert remote.read_bytes() == local.read_bytes()
    assert int(phone_to_local(fs, f"{INTERNAL}/Download/{first.name}").stat().st_mtime) == 1_700_000_000
    listed = json.loads(cli(home, "files", device["name"], f"{INTERNAL}/Download", "--json").stdout)
    assert {first.name, second.name} <= {e["name"] for e in listed}


def test_failures_exit_non_zero_with_the_reason(demo, tmp_path: Path) -> None:
    home, device, _, _, summary = demo
    unknown = cli(home, "photos", "no-such-phone", "--json")
    assert unknown.returncode == 1 and "no device 'no-such-phone'" in unknown.stderr
    for command in (["files", "no-such-phone"], ["pull", "no-such-phone", summary.newest[0]],
                    ["push", "no-such-phone", __file__, "--to", INTERNAL]):
        result = cli(home, *command)
        assert result.returncode == 1, command
        assert "no device" in result.stderr

    missing = f"{INTERNAL}/DCIM/Camera/not-there.jpg"
    result = cli(home, "pull", device["name"], missing, "--to", str(tmp_path))
    assert result.returncode == 1
    assert "not-there.jpg" in result.stderr and "not found" in result.stderr
    assert not list(tmp_path.iterdir())
    # one good and one missing: the good one lands, the exit status says something failed
    result = cli(home, "pull", device["name"], summary.newest[0], missing, "--to", str(tmp_path))
    assert result.returncode == 1
    assert (tmp_path / summary.newest[0].rsplit("/", 1)[1]).exists()

    result = cli(home, "files", device["name"], f"{INTERNAL}/No such folder")
    assert result.returncode == 1 and "not found" in result.stderr
    result = cli(home, "files", device["name"], f"{INTERNAL}/Android/data")
    assert result.returncode == 1 and "permission denied" in result.stderr
    result = cli(home, "push", device["name"], __file__, "--to", f"{INTERNAL}/No such folder")
    assert result.returncode == 1 and "not found" in result.stderr
    # usage errors: 2
    assert cli(home, "files", device["name"], "DCIM").returncode == 2
    assert cli(home, "push", device["name"], str(tmp_path / "nope.txt"), "--to", INTERNAL).returncode == 2
    assert cli(home, "photos", device["name"], "--limit", "0").returncode == 2
