"""The Files page in Debian's chromium against `phonebridge daemon --demo` (127.0.0.1, no discovery).

Sends a file through the page's file input (the drop zone's alternative) and sees it arrive in the
demo phone's Download folder with its transfer row going to 100 %; sends text and the clipboard;
shows the last received clipboard, which a second simulated phone in this process (dialing the
daemon over loopback, as `connect` does) shares live. Keeps test-artifacts/web-ui-files.png.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from test_web_ui import (  # noqa: F401 - fixtures are used by name
    ARTIFACTS, DEMO_NAME, RunningDaemon, browser, demo_device, page, start_daemon, stop_daemon,
)

pytestmark = pytest.mark.browser

SECOND_PHONE = "Pocket Pixel"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = start_daemon(tmp_path_factory.mktemp("web-files"))
    try:
        yield running
    finally:
        stop_daemon(running.process)


class ThreadPhone:
    """A DemoPhone on its own event loop in a thread, so a sync test can drive it."""

    def __init__(self, home: Path) -> None:
        from phonebridge.demo.phone import DemoPhone

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.phone = self.call(self._make(DemoPhone, home))

    @staticmethod
    async def _make(cls, home: Path):  # noqa: ANN001, ANN205
        return cls(home, name=SECOND_PHONE)

    def call(self, coro):  # noqa: ANN001, ANN201
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def close(self) -> None:
        self.call(self.phone.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_files_page_sends_files_text_and_clipboard(daemon: RunningDaemon, page: Page,
                                                   tmp_path: Path) -> None:
    phone = demo_device(daemon)
    page.goto(f"{daemon.base}/#token={daemon.token}")
    page.get_by_test_id("nav-files").click()
    expect(page.get_by_test_id("page-files")).to_be_visible()
    picker = page.get_by_test_id("files-device")
    expect(picker).to_have_value(phone["id"])
    expect(page.get_by_test_id("clipboard-received-empty")).to_be_visible()

    # Record every state a transfer row shows, so the live progress is seen even when fast.
    page.evaluate("""() => {
        window.__states = [];
        new MutationObserver(() => {
            for (const el of document.querySelectorAll('[data-testid=transfer]')) {
                window.__states.push(el.dataset.name + ':' + el.dataset.state + ':' +
                    (el.querySelector('[data-testid=transfer-progress]') || {dataset: {}}).dataset.percent);
            }
        }).observe(document.body, {subtree: true, childList: true, attributes: true});
    }""")

    # a file, by the file input of the drop zone
    payload = bytes(range(256)) * 16384  # 4 MiB
    source = tmp_path / "holiday photo.bin"
    source.write_bytes(payload)
    page.get_by_test_id("file-input").set_input_files(str(source))
    row = page.locator('[data-testid=transfer][data-name="holiday photo.bin"]')
    expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    expect(row).to_have_attribute("data-direction", "out")
    expect(row.get_by_test_id("transfer-progress")).to_have_attribute("data-percent", "100")
    expect(row.get_by_test_id("transfer-meta")).to_contain_text(f"To {DEMO_NAME}")
    expect(row.get_by_test_id("transfer-progress-text")).to_contain_text("4.0 MB")
    received = daemon.home / "demo-phone" / "Download" / "holiday photo.bin"
    expect(page.get_by_test_id("transfer-list")).to_be_visible()
    assert received.read_bytes() == payload
    states = page.evaluate("window.__states")
    assert any(s.startswith("holiday photo.bin:") for s in states), states

    # text and a link
    page.get_by_test_id("share-text").fill("https://example.org/a?b=c")
    expect(page.get_by_test_id("share-send")).to_contain_text("Send link")
    page.get_by_test_id("share-send").click()
    expect(page.locator('[data-testid=transfer][data-kind=url]').first).to_be_visible()
    page.get_by_test_id("share-text").fill("a note for the phone")
    expect(page.get_by_test_id("share-send")).to_contain_text("Send text")
    page.get_by_test_id("share-send").click()
    expect(page.locator('[data-testid=transfer][data-kind=text]').first).to_be_visible()

    # the clipboard box sends to the phone's clipboard
    page.get_by_test_id("clipboard-text").fill("copied from the browser ✓")
    page.get_by_test_id("clipboard-send").click()
    expect(page.get_by_test_id("toast").filter(has_text="Clipboard sent to")).to_be_visible()

    # a second phone shares its clipboard: the page shows it live
    second = ThreadPhone(tmp_path / "second-phone")
    try:
        tcp_port = daemon.get("/api/status").json()["tcp_port"]
        second.call(second.phone.start("127.0.0.1", tcp_port))
        second_id = second.phone.device_id
        for _ in range(100):
            if any(d["id"] == second_id for d in daemon.get("/api/devices").json()):
                break
            page.wait_for_timeout(100)
        assert daemon.post(f"/api/devices/{second_id}/pair").status_code == 200
        for _ in range(100):
            device = daemon.get(f"/api/devices/{second_id}").json()
            if "clipboard" in device["plugins"]:
                break
            page.wait_for_timeout(100)
        from phonebridge.demo.clipboard import ClipboardFeature

        clip = second.phone.feature(ClipboardFeature)
        assert second.call(clip.share_clipboard("shared from the other phone\nsecond line"))
        text = page.get_by_test_id("clipboard-received-text")
        expect(text).to_have_text("shared from the other phone\nsecond line")
        expect(page.get_by_test_id("clipboard-received")).to_contain_text(f"from {SECOND_PHONE}")
        assert daemon.get("/api/clipboard").json()["device"] == second_id
        # it is a target now, too
        expect(picker.locator("option")).to_have_count(2)
        expect(picker).to_have_value(phone["id"])

        # Toasts (they time out by themselves) would cover the transfers in the screenshot.
        page.evaluate("document.querySelectorAll('#toasts .toast').forEach((t) => t.remove())")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-ui-files.png"), full_page=True)
    finally:
        second.close()
