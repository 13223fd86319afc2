"""The web UI in a real browser against a real daemon with the demo phone.

Starts `phonebridge daemon --demo` on loopback only (`--bind 127.0.0.1 --no-discovery`), drives
Debian's chromium with Playwright and keeps screenshots in test-artifacts/ (web-ui-devices.png,
web-ui-pairing.png).
Skipped only when /usr/bin/chromium is missing outside CI; in CI a missing chromium fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
START_TIMEOUT = 20.0
UI_TIMEOUT_MS = 15_000
DEMO_NAME = "Demo Pixel"


@dataclass
class RunningDaemon:
    process: subprocess.Popen
    home: Path
    log: Path
    port: int
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.auth, timeout=10)

    def post(self, path: str, body: object = None) -> httpx.Response:
        return httpx.post(self.base + path, headers=self.auth, json=body or {}, timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_daemon(root: Path, api_port: int = 0) -> RunningDaemon:
    """`phonebridge daemon --demo` on loopback only, state in root/home, log in root/daemon.log."""
    home = root / "home"
    log = root / "daemon.log"
    env = {**os.environ, "PHONEBRIDGE_LOG": "info"}
    env.pop("PHONEBRIDGE_HOME", None)
    command = [sys.executable, "-m", "phonebridge", "--home", str(home), "daemon",
               "--bind", "127.0.0.1", "--no-discovery", "--api-port", str(api_port), "--demo"]
    with open(log, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=root)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the daemon exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                info = json.loads((home / "daemon.json").read_text())
                token = (home / "api-token").read_text().strip()
                candidate = RunningDaemon(process, home, log, int(info["api_port"]), token)
                response = candidate.get("/api/status")
                if response.status_code == 200 and response.json()["pid"] == process.pid:
                    return candidate
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.1)
        pytest.fail(f"the daemon did not answer within {START_TIMEOUT:.0f} s:\n"
                    f"{log.read_text(errors='replace')}")
    except BaseException:
        stop_daemon(process)
        raise


def stop_daemon(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it does not end within 10 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = start_daemon(tmp_path_factory.mktemp("web-ui"))
    try:
        yield running
    finally:
        stop_daemon(running.process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing, and CI is set: install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def demo_device(daemon: RunningDaemon, *, paired: bool = True, timeout: float = 15.0) -> dict:
    """The demo phone's device JSON, once the daemon knows it (and it is paired, if asked)."""
    deadline = time.monotonic() + timeout
    devices: list = []
    while time.monotonic() < deadline:
        devices = daemon.get("/api/devices").json()
        for device in devices:
            if device["name"] == DEMO_NAME and (device["paired"] or not paired):
                return device
        time.sleep(0.1)
    pytest.fail(f"the demo phone did not show up{' paired' if paired else ''}: {devices}\n"
                f"{daemon.log_text()}")


def wait_for_log(daemon: RunningDaemon, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in daemon.log_text():
            return
        time.sleep(0.1)
    pytest.fail(f"{text!r} not in the daemon log:\n{daemon.log_text()}")


# -- the API's guards ---------------------------------------------------------------------------------

def test_api_refuses_requests_without_token_from_other_hosts_and_origins(daemon: RunningDaemon) -> None:
    assert daemon.get("/api/status").status_code == 200

    response = httpx.get(daemon.base + "/api/devices", timeout=10)
    assert response.status_code == 401
    assert "token" in response.json()["error"]

    response = httpx.get(daemon.base + "/api/devices", timeout=10,
                         headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 401

    response = httpx.get(daemon.base + "/api/devices", timeout=10,
                         headers={**daemon.auth, "Host": "evil.example"})
    assert response.status_code == 421

    response = httpx.get(daemon.base + "/api/devices", timeout=10,
                         headers={**daemon.auth, "Origin": "http://evil.example"})
    assert response.status_code == 403

    # The static UI needs no token, but the same Host check.
    response = httpx.get(daemon.base + "/", timeout=10)
    assert response.status_code == 200
    assert 'src="app.js"' in response.text
    assert httpx.get(daemon.base + "/", timeout=10, headers={"Host": "evil.example"}).status_code == 421
    for asset in ("app.js", "lib/api.js", "lib/store.js", "lib/ui.js", "views/devices.js",
                  "style.css", "favicon.svg"):
        response = httpx.get(f"{daemon.base}/{asset}", timeout=10)
        assert response.status_code == 200, asset
    assert "javascript" in httpx.get(daemon.base + "/app.js", timeout=10).headers["content-type"]


# -- the UI -----------------------------------------------------------------------------------------

def test_ui_without_token_tells_how_to_open_it(daemon: RunningDaemon, page: Page) -> None:
    page.goto(daemon.base + "/")
    message = page.get_by_test_id("auth-required")
    expect(message).to_be_visible()
    expect(message).to_contain_text("phonebridge")

    # A wrong (e.g. stale) token: the API answers 401 and the UI says the same, and forgets it.
    # Only the fragment changes here, as when the printed address is opened again in the tab:
    # the page takes the new token and reloads itself.
    with page.expect_event("load"):
        page.goto(daemon.base + "/#token=wrong-token")
    expect(page.get_by_test_id("auth-required")).to_be_visible()
    page.wait_for_function("localStorage.getItem('phonebridge-token') === null")
    assert "token" not in page.url

    # Pasting the address `phonebridge` printed opens the UI.
    page.get_by_test_id("auth-address").fill(f"{daemon.base}/#token={daemon.token}")
    with page.expect_event("load"):
        page.get_by_test_id("auth-open").click()
    expect(page.get_by_test_id("page-devices")).to_be_visible()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")
    assert page.evaluate("localStorage.getItem('phonebridge-token')") == daemon.token


def test_devices_page_pairs_pings_rings_and_updates_live(daemon: RunningDaemon, page: Page) -> None:
    device = demo_device(daemon)
    status = daemon.get("/api/status").json()

    page.goto(f"{daemon.base}/#token={daemon.token}")

    # The token moved from the address bar to localStorage.
    expect(page.get_by_test_id("page-devices")).to_be_visible()
    assert "token" not in page.url
    assert page.evaluate("localStorage.getItem('phonebridge-token')") == daemon.token
    expect(page.get_by_test_id("computer-name")).to_have_text(status["name"])
    expect(page.get_by_test_id("computer-id")).to_have_text(status["id"])
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")

    paired = page.get_by_test_id("paired-devices")
    available = page.get_by_test_id("available-devices")
    card = paired.locator(f'[data-device-id="{device["id"]}"]')
    expect(card).to_be_visible()
    expect(card.get_by_test_id("device-name")).to_have_text(DEMO_NAME)
    expect(card.get_by_test_id("pair-state")).to_have_text("Paired")
    expect(card.get_by_test_id("device-reachable")).to_have_text("Reachable")
    expect(card.get_by_test_id("device-meta")).to_contain_text("Phone")
    expect(card.get_by_test_id("device-meta")).to_contain_text("protocol 8")
    expect(card.get_by_test_id("battery")).to_contain_text("76%")
    expect(card.get_by_test_id("connectivity")).to_contain_text("LTE")
    expect(card.get_by_test_id("connectivity")).to_have_attribute("data-strength", "3")

    # Ping: the UI confirms, and the demo phone got it.
    toasts = page.get_by_test_id("toast")
    card.get_by_role("button", name="Ping").click()
    expect(toasts.filter(has_text=f"Ping sent to {DEMO_NAME}")).to_be_visible()
    wait_for_log(daemon, "demo phone got a ping: Ping from PhoneBridge")

    card.get_by_role("button", name="Ring").click()
    expect(toasts.filter(has_text=f"Ringing {DEMO_NAME}")).to_be_visible()

    # A change made elsewhere (here: the API, as the CLI would) shows up without a reload.
    page.evaluate("window.__sameDocument = true")
    assert daemon.post(f"/api/devices/{device['id']}/unpair").status_code == 200
    moved = available.locator(f'[data-device-id="{device["id"]}"]')
    expect(moved).to_be_visible()
    expect(moved).to_have_attribute("data-pair-state", "unpaired")
    expect(moved.get_by_test_id("pair-state")).to_have_text("Not paired")
    expect(card).to_have_count(0)
    expect(moved.get_by_role("button", name="Ping")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True

    # Pair again from the UI: the demo phone accepts at once.
    moved.get_by_role("button", name="Pair").click()
    expect(card).to_be_visible()
    expect(card.get_by_test_id("pair-state")).to_have_text("Paired")
    expect(card.get_by_test_id("battery")).to_contain_text("76%")
    expect(card.get_by_role("button", name="Ping")).to_be_enabled()
    expect(moved).to_have_count(0)
    expect(page.get_by_test_id("available-empty")).to_be_visible()
    assert demo_device(daemon)["paired"]
    assert page.evaluate("window.__sameDocument") is True

    expect(toasts.filter(has_text=f"Paired with {DEMO_NAME}")).to_be_visible()

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(ARTIFACTS / "web-ui-devices.png"), full_page=True)


def test_api_errors_are_shown_to_the_user(daemon: RunningDaemon, page: Page) -> None:
    demo_device(daemon)
    page.goto(f"{daemon.base}/#token={daemon.token}")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")

    # Nothing listens on port 9 of loopback: the daemon's error reaches a toast.
    page.get_by_test_id("connect-host").fill("127.0.0.1")
    page.get_by_test_id("connect-port").fill("9")
    page.get_by_test_id("connect-button").click()
    error = page.get_by_test_id("toast").and_(page.locator('[data-kind="error"]'))
    expect(error).to_contain_text("cannot connect to 127.0.0.1:9")


def fake_device(**fields: object) -> dict:
    device = {
        "id": "0" * 32, "name": "Fake", "type": "phone", "paired": False, "reachable": True,
        "protocol_version": 8, "pair_state": "unpaired", "verification_key": None, "battery": None,
        "connectivity": None, "certificate_changed": False, "refused_reason": None,
        "certificate_sha256": None, "address": "192.0.2.10:1716", "plugins": [],
        "incoming_capabilities": [], "outgoing_capabilities": [], "pair_deadline": None,
        "last_seen": None,
    }
    device.update(fields)
    return device


def test_pending_and_refused_devices(daemon: RunningDaemon, page: Page) -> None:
    """States the demo phone does not reach on its own, from a stubbed device list."""
    deadline = int(time.time() * 1000) + 30_000
    devices = [
        fake_device(id="a" * 32, name="Anna's Tablet", type="tablet", pair_state="incoming",
                    verification_key="3F9A0C1E", pair_deadline=deadline),
        fake_device(id="b" * 32, name="Work Laptop", type="laptop", pair_state="requested",
                    verification_key="77B2D410", pair_deadline=deadline, protocol_version=7),
        fake_device(id="c" * 32, name="Old Phone", paired=True, reachable=False, pair_state="paired",
                    certificate_changed=True, refused_reason="certificate changed",
                    last_seen=int(time.time() * 1000) - 3_600_000),
        fake_device(id="d" * 32, name="Living Room TV", type="tv", paired=True, reachable=False,
                    pair_state="paired", battery={"charge": 12, "charging": True},
                    connectivity={"1": {"network_type": "5G", "signal_strength": 1}}),
    ]
    page.route("**/api/devices", lambda route: route.fulfill(json=devices))
    page.goto(f"{daemon.base}/#token={daemon.token}")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "connected")

    available = page.get_by_test_id("available-devices")
    paired = page.get_by_test_id("paired-devices")

    incoming = available.locator(f'[data-device-id="{"a" * 32}"]')
    expect(incoming.get_by_test_id("verification-key")).to_contain_text(
        "Check the same code is shown on the phone: 3F9A0C1E")
    expect(incoming.get_by_role("button", name="Accept")).to_be_visible()
    expect(incoming.get_by_role("button", name="Reject")).to_be_visible()

    requested = available.locator(f'[data-device-id="{"b" * 32}"]')
    expect(requested.get_by_test_id("verification-key")).to_contain_text("77B2D410")
    expect(requested.get_by_role("button", name="Cancel")).to_be_visible()
    expect(requested.get_by_role("button", name="Pair")).to_have_count(0)

    changed = paired.locator(f'[data-device-id="{"c" * 32}"]')
    expect(changed.get_by_test_id("certificate-warning")).to_have_text(
        "Certificate changed — refused. Unpair to pair again.")
    expect(changed.get_by_role("button", name="Unpair")).to_be_visible()
    expect(changed.get_by_role("button", name="Ping")).to_have_count(0)

    offline = paired.locator(f'[data-device-id="{"d" * 32}"]')
    expect(offline.get_by_test_id("device-reachable")).to_have_text("Unreachable")
    expect(offline.get_by_role("button", name="Ping")).to_be_disabled()
    expect(offline.get_by_role("button", name="Ring")).to_be_disabled()
    expect(offline.get_by_test_id("battery")).to_have_attribute("data-charging", "true")
    expect(offline.get_by_test_id("connectivity")).to_contain_text("5G")

    # An action the daemon refuses (it does not know the device) shows the daemon's message.
    incoming.get_by_role("button", name="Reject").click()
    error = page.get_by_test_id("toast").and_(page.locator('[data-kind="error"]'))
    expect(error).to_contain_text(f"unknown device {'a' * 32}")

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(ARTIFACTS / "web-ui-pairing.png"), full_page=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_reconnects_after_the_daemon_restarts(tmp_path: Path, browser: Browser) -> None:
    first = start_daemon(tmp_path, api_port=free_port())
    second: RunningDaemon | None = None
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        device = demo_device(first)
        page.goto(f"{first.base}/#token={first.token}")
        status = page.get_by_test_id("connection-status")
        expect(status).to_have_attribute("data-state", "connected")
        card = page.get_by_test_id("paired-devices").locator(f'[data-device-id="{device["id"]}"]')
        expect(card.get_by_test_id("device-reachable")).to_have_text("Reachable")
        page.evaluate("window.__sameDocument = true")

        expect(page.get_by_test_id("offline-banner")).to_be_hidden()
        stop_daemon(first.process)
        expect(status).not_to_have_attribute("data-state", "connected")
        expect(page.get_by_test_id("offline-banner")).to_be_visible()
        page.screenshot(path=str(tmp_path / "offline.png"))

        second = start_daemon(tmp_path, api_port=first.port)
        assert second.token == first.token
        demo_device(second)
        # The page reconnects by itself (backoff of at most 15 s) and re-reads the devices.
        expect(status).to_have_attribute("data-state", "connected", timeout=30_000)
        expect(card.get_by_test_id("pair-state")).to_have_text("Paired")
        expect(card.get_by_test_id("device-reachable")).to_have_text("Reachable")
        # (No battery check here: after a restart the daemon may drop the phone's first battery
        # packet, which races with loading the plugins of an already paired device.)
        expect(page.get_by_test_id("offline-banner")).to_be_hidden()
        assert page.evaluate("window.__sameDocument") is True
    finally:
        context.close()
        stop_daemon(first.process)
        if second is not None:
            stop_daemon(second.process)
