"""The Photos page in Debian's chromium against `phonebridge daemon --demo` (127.0.0.1, no discovery).

The demo phone's storage is seeded by this module before the daemon starts (hostile, 300 photos, so
broken files and odd names are there and the grid needs more than one page), then read through its
real SFTP server. The page is checked as a user sees it: thumbnails newest first as the seed says
(only the tiles near the viewport load), more as you scroll, the viewer, multi-select and download
into the download folder (config.toml points it into the test's folder), the phone-files browser
into a nested folder, uploads (file picker and drop), broken images and a refused folder.
Keeps test-artifacts/web-ui-photos.png and web-ui-phone-files.png.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from phonebridge.demo.storage import INTERNAL, SeedSummary, phone_to_local, seed_storage
from test_web_ui import (  # noqa: F401 - fixtures are used by name
    ARTIFACTS, RunningDaemon, browser, demo_device, page, start_daemon, stop_daemon,
)

pytestmark = pytest.mark.browser

PHOTOS = 300
PAGE_SIZE = 120  # views/photos.js PAGE_SIZE


class Rig:
    def __init__(self, daemon: RunningDaemon, summary: SeedSummary, downloads: Path) -> None:
        self.daemon = daemon
        self.summary = summary
        self.downloads = downloads
        self.fs = daemon.home / "demo-phone" / "fs"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("web-photos")
    home = root / "home"
    home.mkdir(mode=0o700)
    downloads = root / "downloads"
    (home / "config.toml").write_text(f'download_dir = "{downloads}"\n')
    summary = seed_storage(home / "demo-phone" / "fs", photos=PHOTOS, hostile=True)  # kept by the demo
    running = start_daemon(root)
    try:
        yield Rig(running, summary, downloads)
    finally:
        stop_daemon(running.process)


def open_photos(rig: Rig, page: Page) -> dict:
    phone = demo_device(rig.daemon)
    page.goto(f"{rig.daemon.base}/#token={rig.daemon.token}")
    page.get_by_test_id("nav-photos").click()
    expect(page.get_by_test_id("page-photos")).to_be_visible()
    expect(page.get_by_test_id("photos-device")).to_have_value(phone["id"])
    return phone


def tile_paths(page: Page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=photo-tile]", "els => els.map(e => e.dataset.path)")


def tile_states(page: Page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=photo-tile]", "els => els.map(e => e.dataset.state)")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_grid_viewer_selection_and_download(rig: Rig, page: Page) -> None:
    summary = rig.summary
    phone = open_photos(rig, page)
    tiles = page.get_by_test_id("photo-tile")
    first = page.locator(f'[data-testid=photo-tile][data-path="{summary.newest[0]}"]')
    expect(first).to_have_attribute("data-state", "loaded")
    expect(tiles).to_have_count(PAGE_SIZE)

    # newest first, as the seed says (the broken pictures sit at their file dates among them)
    shown = [p for p in tile_paths(page) if p not in summary.hostile]
    assert shown == summary.newest[: len(shown)]
    newest_month = datetime.datetime.fromtimestamp(summary.dates[summary.newest[0]] / 1000).strftime("%B %Y")
    expect(page.get_by_test_id("photo-group").first).to_have_text(newest_month)
    assert page.evaluate("document.querySelector('[data-testid=photo-tile] img').naturalWidth") > 100

    # only the tiles near the viewport load their thumbnails
    expect(page.locator("[data-testid=photo-tile][data-state=loaded]").nth(11)).to_be_attached()
    far = tiles.nth(PAGE_SIZE - 1)
    expect(far).to_have_attribute("data-state", "idle")
    assert tile_states(page).count("loaded") < PAGE_SIZE // 2

    # broken pictures say so; the rest of the grid works
    broken = page.locator(f'[data-testid=photo-tile][data-path="{INTERNAL}/DCIM/Camera/broken.jpg"]')
    expect(broken).to_have_attribute("data-state", "broken")
    expect(broken).to_contain_text("Broken image")
    expect(page.locator(f'[data-testid=photo-tile][data-path="{INTERNAL}/Pictures/notes.jpg"]')
           ).to_have_attribute("data-state", "broken")

    # the viewer: the full image, arrow keys, Escape
    first.click()
    viewer = page.get_by_test_id("viewer")
    expect(viewer).to_be_visible()
    expect(viewer).to_have_attribute("data-state", "loaded")
    expect(page.get_by_test_id("viewer-name")).to_have_text(summary.newest[0].rsplit("/", 1)[1])
    listed = rig.daemon.get(f"/api/devices/{phone['id']}/photos?limit=200").json()["items"]
    item = next(p for p in listed if p["path"] == summary.newest[0])
    natural = page.evaluate("document.querySelector('[data-testid=viewer-image]').naturalWidth")
    assert natural in (item["width"], item["height"]) and natural > 320  # the original, not a thumbnail
    expect(page.get_by_test_id("viewer-meta")).to_contain_text(f"{item['width']} × {item['height']}")
    page.keyboard.press("ArrowRight")
    second = tile_paths(page)[tile_paths(page).index(summary.newest[0]) + 1]
    expect(viewer).to_have_attribute("data-path", second)
    page.keyboard.press("ArrowLeft")
    expect(viewer).to_have_attribute("data-path", summary.newest[0])
    page.get_by_test_id("viewer-download").click()  # into the download folder, with its date
    status = page.get_by_test_id("download-status")
    expect(status).to_have_attribute("data-state", "done", timeout=30_000)
    landed = rig.downloads / summary.newest[0].rsplit("/", 1)[1]
    assert sha(landed) == sha(phone_to_local(rig.fs, summary.newest[0]))
    assert int(landed.stat().st_mtime) == int(phone_to_local(rig.fs, summary.newest[0]).stat().st_mtime)
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # a broken picture in the viewer
    broken.click()
    expect(viewer).to_have_attribute("data-state", "broken")
    expect(page.get_by_test_id("viewer-broken")).to_contain_text("Broken image")
    page.get_by_test_id("viewer-close").click()
    expect(viewer).to_be_hidden()

    # multi-select: checkbox, ctrl-click, shift-click for a range
    good = [i for i, p in enumerate(tile_paths(page)) if p not in summary.hostile]
    a, b, c = good[6], good[8], good[10]
    tiles.nth(a).hover()
    tiles.nth(a).get_by_test_id("photo-check").check()
    tiles.nth(b).click(modifiers=["Control"])
    tiles.nth(c).click(modifiers=["Shift"])
    wanted = tile_paths(page)[a:a + 1] + tile_paths(page)[b:c + 1]
    expect(page.get_by_test_id("selection-count")).to_have_text(f"{len(wanted)} items selected")
    expect(page.locator("[data-testid=photo-tile].selected")).to_have_count(len(wanted))
    download = page.get_by_test_id("photos-download")
    expect(download).to_have_text(f"Download {len(wanted)}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-ui-photos.png"))
    download.click()
    expect(status).to_have_attribute("data-state", "done", timeout=30_000)
    expect(status).to_contain_text(f"Saved {len(wanted)} files to {rig.downloads}")
    expect(page.get_by_test_id("selection-bar")).to_be_hidden()
    for path in wanted:
        landed = rig.downloads / path.rsplit("/", 1)[1]
        source = phone_to_local(rig.fs, path)
        assert sha(landed) == sha(source)
        assert int(landed.stat().st_mtime) == int(source.stat().st_mtime)

    # scrolling loads the next pages, until the whole gallery is there
    total = rig.daemon.get(f"/api/devices/{phone['id']}/photos?limit=1").json()["total"]
    assert total > 2 * PAGE_SIZE
    page.keyboard.press("End")  # to the bottom of what is there: the next page comes
    expect(tiles).not_to_have_count(PAGE_SIZE)
    loaded = tiles.count()
    while loaded < total:
        page.get_by_test_id("photos-more").scroll_into_view_if_needed()
        expect(tiles).not_to_have_count(loaded)
        loaded = tiles.count()
    expect(tiles).to_have_count(total)
    shown = [p for p in tile_paths(page) if p not in summary.hostile]
    assert shown == summary.newest
    # a video shows as a video tile (no poster frame without a video decoder)
    video = page.locator("[data-testid=photo-tile][data-kind=video]").first
    video.scroll_into_view_if_needed()
    expect(video).to_have_attribute("data-state", "no-preview")
    expect(video.get_by_test_id("video-badge")).to_be_visible()
    # tiles that scrolled away were not all kept loaded: far-away ones are released or never loaded
    assert tile_states(page).count("loaded") < total


def test_phone_files_browse_download_and_upload(rig: Rig, page: Page, tmp_path: Path) -> None:
    open_photos(rig, page)
    page.get_by_test_id("tab-files").click()
    pane = page.get_by_test_id("files-pane")
    expect(pane).to_be_visible()
    entries = page.get_by_test_id("pf-entry")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("Internal shared storage")
    expect(entries.nth(1)).to_contain_text("SD card")
    expect(page.get_by_test_id("pf-upload")).to_be_disabled()  # not into the list of volumes

    def open_folder(name: str) -> None:
        page.locator(f'[data-testid=pf-entry][data-name="{name}"] [data-testid=pf-open]').click()
        expect(page.get_by_test_id("pf-crumb").last).to_have_text(name)

    def crumbs() -> list[str]:
        return [t.strip() for t in page.get_by_test_id("pf-crumb").all_inner_texts()]

    open_folder("Internal shared storage")
    for name in ("Documents", "Work", "2026", "Reports", "Drafts"):
        open_folder(name)
    assert crumbs() == ["Phone", "Internal shared storage", "Documents", "Work", "2026", "Reports", "Drafts"]
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_have_attribute("data-name", "Old")
    expect(entries.nth(0)).to_have_attribute("data-dir", "1")
    expect(entries.nth(1)).to_have_attribute("data-name", "Q3 draft.txt")

    # back up by the breadcrumb; download two files at once
    page.get_by_test_id("pf-crumb").filter(has_text="Reports").click()
    expect(page.get_by_test_id("pf-crumb").last).to_have_text("Reports")
    for name in ("Q1 report.pdf", "Q2 report.pdf"):
        page.locator(f'[data-testid=pf-entry][data-name="{name}"] [data-testid=pf-check]').check()
    get_two = page.get_by_test_id("pf-download")
    expect(get_two).to_have_text("Download 2")
    get_two.click()
    status = page.get_by_test_id("pf-pull-status")
    expect(status).to_have_attribute("data-state", "done", timeout=30_000)
    reports = f"{INTERNAL}/Documents/Work/2026/Reports"
    for name in ("Q1 report.pdf", "Q2 report.pdf"):
        assert sha(rig.downloads / name) == sha(phone_to_local(rig.fs, f"{reports}/{name}"))

    # upload with the file picker into Download
    page.get_by_test_id("pf-crumb").filter(has_text="Internal shared storage").click()
    open_folder("Download")
    upload = tmp_path / "from the browser ✓.txt"
    upload.write_bytes(b"uploaded through the Photos page\n" * 5000)
    page.get_by_test_id("pf-file-input").set_input_files(str(upload))
    pushed = page.get_by_test_id("pf-push-status")
    expect(pushed).to_have_attribute("data-state", "done", timeout=30_000)
    expect(page.locator(f'[data-testid=pf-entry][data-name="{upload.name}"]')).to_be_visible()
    assert phone_to_local(rig.fs, f"{INTERNAL}/Download/{upload.name}").read_bytes() == upload.read_bytes()

    # and by dropping a file on the folder
    page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File(["dropped on the page"], "dropped note.txt", {type: "text/plain"}));
        const pane = document.querySelector('[data-testid=files-pane]');
        pane.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
        pane.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
    }""")
    expect(page.locator('[data-testid=pf-entry][data-name="dropped note.txt"]')).to_be_visible(timeout=30_000)
    dropped = phone_to_local(rig.fs, f"{INTERNAL}/Download/dropped note.txt")
    assert dropped.read_text() == "dropped on the page"
    page.screenshot(path=str(ARTIFACTS / "web-ui-phone-files.png"))

    # a folder the phone refuses says why and the browser stays usable
    page.get_by_test_id("pf-crumb").filter(has_text="Internal shared storage").click()
    open_folder("Android")
    page.locator('[data-testid=pf-entry][data-name="data"] [data-testid=pf-open]').click()
    note = page.get_by_test_id("pf-note")
    expect(note).to_have_attribute("data-state", "error")
    expect(note).to_contain_text("permission denied")
    expect(page.get_by_test_id("pf-crumb").last).to_have_text("Android")
    page.locator('[data-testid=pf-entry][data-name="media"] [data-testid=pf-open]').click()
    expect(page.get_by_test_id("pf-crumb").last).to_have_text("media")
    expect(note).to_have_attribute("data-state", "empty")  # an empty folder says so
    expect(note).to_contain_text("This folder is empty.")


def test_states_refused_offline_and_not_paired(rig: Rig, page: Page, tmp_path: Path) -> None:
    """A second phone that refuses its storage, then goes away; then no paired phone at all."""
    from phonebridge.demo.sftp import SftpFeature
    from test_files_page import SECOND_PHONE, ThreadPhone

    demo = open_photos(rig, page)
    expect(page.get_by_test_id("photo-tile").first).to_be_visible()
    state = page.get_by_test_id("photos-state")
    picker = page.get_by_test_id("photos-device")
    second = ThreadPhone(tmp_path / "second-phone")
    try:
        sftp = second.phone.feature(SftpFeature)
        sftp.faults.error_message = "Storage permission is not granted"
        tcp_port = rig.daemon.get("/api/status").json()["tcp_port"]
        second.call(second.phone.start("127.0.0.1", tcp_port))
        second_id = second.phone.device_id
        expect(picker.locator(f'option[value="{second_id}"]')).to_have_count(0)
        for _ in range(100):
            if rig.daemon.post(f"/api/devices/{second_id}/pair").status_code == 200:
                break
            page.wait_for_timeout(100)
        expect(picker.locator(f'option[value="{second_id}"]')).to_have_count(1)
        expect(picker).to_be_visible()  # two phones: a choice
        picker.select_option(second_id)
        # the phone refused: its own message, and a way to try again
        expect(state).to_have_attribute("data-state", "error", timeout=30_000)
        expect(state).to_contain_text("Storage permission is not granted")
        expect(page.get_by_test_id("photos-pane")).to_be_hidden()
        page.get_by_test_id("tab-files").click()
        expect(state).to_have_attribute("data-state", "error", timeout=30_000)
        expect(state).to_contain_text("Storage permission is not granted")
        sftp.faults.error_message = None
        page.get_by_test_id("photos-retry").click()
        expect(page.get_by_test_id("pf-entry").first).to_contain_text("Internal shared storage")
        page.get_by_test_id("tab-photos").click()
        page.get_by_test_id("photos-retry").click()
        expect(page.get_by_test_id("photo-tile").first).to_have_attribute("data-state", "loaded")
        expect(state).to_be_hidden()
        # the phone goes away
        second.call(second.phone.stop())
        expect(state).to_have_attribute("data-state", "offline")
        expect(state).to_contain_text(f"{SECOND_PHONE} is not reachable")
        assert rig.daemon.post(f"/api/devices/{second_id}/unpair").status_code == 200
        expect(picker).to_have_value(demo["id"])  # back to the phone that is still paired
        expect(page.get_by_test_id("photo-tile").first).to_be_visible()
    finally:
        second.close()
    # no paired phone at all
    assert rig.daemon.post(f"/api/devices/{demo['id']}/unpair").status_code == 200
    expect(state).to_have_attribute("data-state", "no-device")
    expect(state).to_have_text(
        "No paired phone. Pair one on the Devices page to see its photos and files here.")
    page.screenshot(path=str(ARTIFACTS / "web-ui-photos-no-phone.png"))
    assert rig.daemon.post(f"/api/devices/{demo['id']}/pair", {"wait": True}).status_code == 200
    expect(page.get_by_test_id("photo-tile").first).to_be_visible(timeout=30_000)
