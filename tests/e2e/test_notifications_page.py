"""The Notifications page and the call banner in chromium against `phonebridge daemon --demo`
(loopback only, no discovery) whose demo phone runs its timeline 3x faster
(PHONEBRIDGE_DEMO_SPEED=3): three notifications with icons at once, a call ringing ~4 s later
that is missed ~7 s after that. Screenshots: test-artifacts/notifications-call-devices.png, notifications-call.png,
test-artifacts/notifications-page.png."""

from __future__ import annotations

import os
import sys
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


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    old = os.environ.get("PHONEBRIDGE_DEMO_SPEED")
    os.environ["PHONEBRIDGE_DEMO_SPEED"] = "3"
    try:
        running = start_daemon(tmp_path_factory.mktemp("notifications-ui"))
    finally:
        if old is None:
            os.environ.pop("PHONEBRIDGE_DEMO_SPEED", None)
        else:
            os.environ["PHONEBRIDGE_DEMO_SPEED"] = old
    try:
        yield running
    finally:
        stop_daemon(running.process)


def test_notifications_page_call_banner_reply_act_dismiss_search(daemon: RunningDaemon, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    demo_device(daemon)
    page.goto(f"{daemon.base}/#token={daemon.token}")
    expect(page.get_by_test_id("page-devices")).to_be_visible()

    # The call banner shows on whatever page is open (here: Devices).
    banner = page.get_by_test_id("call-banner")
    expect(banner).to_be_visible(timeout=15_000)
    expect(banner).to_have_attribute("data-event", "ringing")
    expect(banner.get_by_test_id("call-who")).to_have_text("Alice Martin")
    page.screenshot(path=str(ARTIFACTS / "notifications-call-devices.png"))

    page.get_by_test_id("nav-notifications").click()
    feed = page.get_by_test_id("notification-feed")
    chat = feed.locator('[data-testid="notification"][data-app="Chat"]')
    expect(chat).to_be_visible()
    expect(chat.get_by_test_id("notification-title")).to_have_text("Alice")
    for app in ("Mail", "Calendar"):
        expect(feed.locator(f'[data-testid="notification"][data-app="{app}"]')).to_be_visible()
    expect(chat.locator(".app-icon img")).to_be_visible()  # the PNG payload, fetched and cached
    expect(banner).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "notifications-call.png"))
    banner.get_by_test_id("call-mute").click()
    expect(banner.get_by_test_id("call-mute")).to_have_text("Muted")

    # Unanswered: the banner goes, the missed call is listed.
    expect(page.get_by_test_id("call-banner")).to_have_count(0, timeout=15_000)
    expect(page.get_by_test_id("missed-call").first).to_contain_text("Alice Martin")

    # Reply: the phone's messaging app updates its notification, live.
    chat.get_by_test_id("reply-input").fill("On my way")
    chat.get_by_test_id("reply-send").click()
    expect(chat.get_by_test_id("notification-text")).to_have_text("You: On my way")

    # An action, then dismiss: the notification moves to "Earlier".
    calendar = feed.locator('[data-testid="notification"][data-app="Calendar"]')
    calendar.locator('[data-testid="notification-action"][data-action="Snooze"]').click()
    expect(page.get_by_test_id("toast").filter(has_text="Snooze")).to_be_visible()
    feed.locator('[data-testid="notification"][data-app="Mail"]').get_by_test_id("dismiss").click()
    expect(feed.locator('[data-testid="notification"][data-app="Mail"]')).to_have_count(0)
    history = page.get_by_test_id("notification-history")
    expect(history.locator('[data-testid="notification"][data-app="Mail"]').first).to_be_visible()

    page.get_by_test_id("notifications-search").fill("warehous")
    page.get_by_test_id("notifications-search").press("Enter")
    expect(page.get_by_test_id("search-result").first).to_contain_text("warehouse")
    page.screenshot(path=str(ARTIFACTS / "notifications-page.png"), full_page=True)

    api = daemon.get(f"/api/devices/{demo_device(daemon)['id']}/notifications").json()
    assert any(n["app"] == "Mail" and not n["active"] for n in api)
    assert "Traceback" not in daemon.log_text()
