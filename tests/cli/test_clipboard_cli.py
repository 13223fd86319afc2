"""`phonebridge clipboard` against an in-process daemon (127.0.0.1, no discovery) and the demo phone:
send with DEVICE TEXT, read the last received with and without --json, and the argument rules."""

from __future__ import annotations

import json

import pytest

import helpers
from helpers import run_cli, wait_for
from phonebridge.demo.clipboard import ClipboardFeature
from phonebridge.demo.phone import DemoPhone

pytestmark = pytest.mark.timeout(60)



@pytest.fixture
async def setup(tmp_path):
    home = tmp_path / "home"
    daemon = await helpers.start_daemon(home)
    phone = DemoPhone(tmp_path / "phone")
    try:
        await helpers.link_and_pair(daemon, phone)
        await wait_for(lambda: "clipboard" in daemon.manager.devices[phone.device_id].plugins,
                       what="paired with the clipboard plugin")
        yield home, daemon, phone
    finally:
        await phone.stop()
        await daemon.stop()


async def test_clipboard_send_and_show_last_received(setup) -> None:
    home, daemon, phone = setup
    clip = phone.feature(ClipboardFeature)

    code, out, err = await run_cli(home, "clipboard", "--json")
    assert (code, json.loads(out)) == (0, None), err
    code, out, err = await run_cli(home, "clipboard")
    assert code == 0 and out == "" and "No clipboard received yet" in err

    code, out, err = await run_cli(home, "clipboard", "Demo Pixel", "two words, ünïcode")
    assert code == 0, err
    assert "Sent the clipboard to Demo Pixel" in out
    await wait_for(lambda: clip.text == "two words, ünïcode", what="phone clipboard")

    code, out, err = await run_cli(home, "clipboard", phone.device_id[:8], "-", stdin="from stdin\n")
    assert code == 0, err
    await wait_for(lambda: clip.text == "from stdin\n", what="phone clipboard from stdin")

    await clip.share_clipboard("shared by the phone")
    await wait_for(lambda: daemon.desktop.clipboard.text == "shared by the phone", what="received")
    code, out, err = await run_cli(home, "clipboard", "--json")
    assert code == 0, err
    last = json.loads(out)
    assert last["device"] == phone.device_id and last["content"] == "shared by the phone"
    assert isinstance(last["time"], int) and last["time"] > 1_600_000_000_000
    code, out, _ = await run_cli(home, "clipboard")
    assert (code, out) == (0, "shared by the phone\n")


async def test_clipboard_argument_errors(setup) -> None:
    home, _, _ = setup
    code, _, err = await run_cli(home, "clipboard", "Demo Pixel")
    assert code == 2 and "usage: phonebridge clipboard DEVICE TEXT" in err
    code, _, err = await run_cli(home, "clipboard", "a", "b", "c")
    assert code == 2 and "usage" in err
    code, _, err = await run_cli(home, "clipboard", "no-such-phone", "text")
    assert code == 1 and "no device 'no-such-phone'" in err
