"""Clipboard routes (DEVICE is a device id):
  POST /api/devices/{DEVICE}/clipboard  {"content": "..."}: make it the device's clipboard
  GET  /api/clipboard                   the last clipboard received from any device:
                                        {"device", "content", "time" (ms)}, or null
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from phonebridge.errors import DeviceError
from phonebridge.plugins.clipboard import STATE_KEY, ClipboardPlugin

if TYPE_CHECKING:
    from phonebridge.app import Daemon

MAX_CONTENT = 1_000_000
"""Characters; KDE Connect sends the clipboard in one packet line (PROTOCOL.md §1)."""


class ClipboardRequest(BaseModel):
    content: str = Field(..., max_length=MAX_CONTENT)


def router(daemon: Daemon) -> APIRouter:
    router = APIRouter()
    manager = daemon.manager
    assert manager is not None

    @router.post("/api/devices/{device_id}/clipboard")
    async def send_clipboard(device_id: str, request: ClipboardRequest) -> dict[str, Any]:
        plugin = manager.plugin(device_id, ClipboardPlugin.info.name)
        assert isinstance(plugin, ClipboardPlugin)
        if not await plugin.send_text(request.content):
            raise DeviceError("the device does not accept clipboard content")
        return {"sent": True}

    @router.get("/api/clipboard")
    async def last_clipboard() -> dict[str, Any] | None:
        latest: dict[str, Any] | None = None
        for device in manager.devices.values():
            entry = device.state.get(STATE_KEY)
            if entry and (latest is None or entry["time"] >= latest["time"]):
                latest = {"device": device.id, "content": entry["content"], "time": entry["time"]}
        return latest

    return router
