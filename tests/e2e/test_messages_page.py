"""The Messages page in chromium against `phonebridge daemon --demo` (loopback only, no
discovery) with the demo phone's full seeded history: threads with names and unread marks, a group
thread with participants and attachment thumbnails, sending with its state, search with
highlighted hits. Screenshot: test-artifacts/web-ui-messages.png."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_web_ui import (  # noqa: E402
    ARTIFACTS, RunningDaemon, browser, demo_device, page, start_daemon, stop_daemon,
)

pytestmark = pytest.mark.browser
__all__ = ["browser", "page"]  # fixtures used here

SYNC_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = start_daemon(tmp_path_factory.mktemp("messages-ui"))
    try:
        yield running
    finally:
        stop_daemon(running.process)


def synced(daemon: RunningDaemon, device_id: str) -> dict:
    deadline = time.monotonic() + SYNC_TIMEOUT
    state: dict = {}
    while time.monotonic() < deadline:
        state = daemon.get(f"/api/devices/{device_id}/sync").json()
        if state.get("state") == "synced":
            return state
        time.sleep(0.2)
    pytest.fail(f"the demo history did not sync: {state}\n{daemon.log_text()[-3000:]}")


def test_messages_page(daemon: RunningDaemon, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    device = demo_device(daemon)
    state = synced(daemon, device["id"])
    assert state["messages"] >= 20_000 and state["threads"] >= 200  # the --demo history is full
    threads = daemon.get(f"/api/devices/{device['id']}/messages").json()

    page.goto(f"{daemon.base}/#token={daemon.token}")
    page.get_by_test_id("nav-messages").click()
    expect(page.get_by_test_id("sync-state")).to_contain_text("Up to date")
    items = page.get_by_test_id("thread")
    expect(items).to_have_count(len(threads))
    first = items.first
    expect(first.locator(".thread-name")).to_have_text(", ".join(threads[0]["names"]))
    expect(page.locator('[data-testid="thread"][data-unread="1"]').first).to_be_visible()

    # A group thread with attachments: participants listed, thumbnails shown.
    def has_thumbnail(t: dict) -> bool:
        shown = daemon.get(f"/api/devices/{device['id']}/messages/{t['thread_id']}?limit=200").json()
        return any(a["has_thumbnail"] for m in shown for a in m["attachments"])

    group = next(t for t in threads if t["is_group"] and has_thumbnail(t))
    page.locator(f'[data-testid="thread"][data-thread="{group["thread_id"]}"]').click()
    expect(page.get_by_test_id("participants")).to_contain_text("Group")
    expect(page.get_by_test_id("bubble").last).to_be_visible()
    expect(page.locator('[data-testid="attachment"] img').first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "web-ui-messages-group.png"))

    # Send: pending at once, then confirmed by the phone.
    one = next(t for t in threads if not t["is_group"])
    page.locator(f'[data-testid="thread"][data-thread="{one["thread_id"]}"]').click()
    page.get_by_test_id("compose-text").fill("Crème brûlée at 8? 🍮")
    page.get_by_test_id("compose-send").click()
    sent = page.locator('[data-testid="bubble"]', has_text="Crème brûlée at 8?")
    expect(sent.last).to_have_attribute("data-status", "sent")
    expect(sent).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "web-ui-messages.png"))

    # Search: diacritics folded, prefix, hits highlighted; a hit opens its thread.
    page.get_by_test_id("messages-search").fill("creme brul")
    hit = page.get_by_test_id("message-hit").first
    expect(hit).to_be_visible()
    expect(hit.locator("mark").first).to_have_text(re.compile("Crème", re.I))
    page.screenshot(path=str(ARTIFACTS / "web-ui-messages-search.png"))
    hit.click()
    expect(page.get_by_test_id("bubble").last).to_be_visible()
