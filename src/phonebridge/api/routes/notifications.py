"""Notification, call and search routes (DEVICE is a device id; ID a notification id, sent in
the body because phones' ids contain "|" and other path-unfriendly characters):
  GET  /api/devices/{DEVICE}/notifications          history, newest first (?active=true, ?limit=N)
  POST /api/devices/{DEVICE}/notifications/dismiss  {"id"}: dismiss on the phone
  POST /api/devices/{DEVICE}/notifications/reply    {"id", "message"}: reply where offered
  POST /api/devices/{DEVICE}/notifications/action   {"id", "action"}: press one of its actions
  GET  /api/devices/{DEVICE}/notifications/muted    {"apps": [...]}: apps that raise no toast
  POST /api/devices/{DEVICE}/notifications/mute     {"app", "muted": bool}
  GET  /api/icons/{HASH}                            a cached notification icon (image bytes)
  GET  /api/devices/{DEVICE}/calls                  the calls log, newest first (?limit=N)
  POST /api/devices/{DEVICE}/mute                   mute the phone's ringer
  GET  /api/calls/current                           calls in progress: [{device, event, ...}]
  GET  /api/search?q=TEXT                           search notifications (and later kinds)
Events: notification.posted, notification.updated (same data: the notification JSON),
notification.removed ({id, reason}), call.changed ({event, number, name, time, thumbnail, active}).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from phonebridge.errors import DeviceError
from phonebridge.plugins.notifications import NotificationsPlugin, is_image
from phonebridge.plugins.telephony import TelephonyPlugin

if TYPE_CHECKING:
    from phonebridge.app import Daemon

_HASH = re.compile(r"^[0-9a-f]{32}$")
MAX_MESSAGE = 64 * 1024


class NotificationRef(BaseModel):
    id: str = Field(..., min_length=1, max_length=1024)


class ReplyRequest(NotificationRef):
    message: str = Field(..., min_length=1, max_length=MAX_MESSAGE)


class ActionRequest(NotificationRef):
    action: str = Field(..., min_length=1, max_length=1024)


class MuteRequest(BaseModel):
    app: str = Field(..., max_length=1024)
    muted: bool = True


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data.startswith(b"RIFF"):
        return "image/webp"
    return "image/bmp"


def router(daemon: Daemon) -> APIRouter:
    router = APIRouter()
    manager = daemon.manager
    assert manager is not None
    services = daemon.services

    def plugin(device_id: str) -> NotificationsPlugin:
        found = manager.plugin(device_id, NotificationsPlugin.info.name)
        assert isinstance(found, NotificationsPlugin)
        return found

    def telephony(device_id: str) -> TelephonyPlugin:
        found = manager.plugin(device_id, TelephonyPlugin.info.name)
        assert isinstance(found, TelephonyPlugin)
        return found

    @router.get("/api/devices/{device_id}/notifications")
    async def notifications(device_id: str, active: bool = False,
                            limit: int = Query(500, ge=1, le=1000)) -> list[dict[str, Any]]:
        manager.get(device_id)
        records = await services.notifications.list(device_id, active_only=active, limit=limit)
        return [r.to_json() for r in records]

    @router.post("/api/devices/{device_id}/notifications/dismiss")
    async def dismiss(device_id: str, request: NotificationRef) -> dict[str, Any]:
        await plugin(device_id).dismiss(request.id)
        return {"sent": True}

    @router.post("/api/devices/{device_id}/notifications/reply")
    async def reply(device_id: str, request: ReplyRequest) -> dict[str, Any]:
        await plugin(device_id).reply(request.id, request.message)
        return {"sent": True}

    @router.post("/api/devices/{device_id}/notifications/action")
    async def action(device_id: str, request: ActionRequest) -> dict[str, Any]:
        await plugin(device_id).action(request.id, request.action)
        return {"sent": True}

    @router.get("/api/devices/{device_id}/notifications/muted")
    async def muted(device_id: str) -> dict[str, Any]:
        manager.get(device_id)
        return {"apps": sorted(await services.notifications.muted_apps(device_id))}

    @router.post("/api/devices/{device_id}/notifications/mute")
    async def mute_app(device_id: str, request: MuteRequest) -> dict[str, Any]:
        device = manager.get(device_id)
        loaded = device.plugins.get(NotificationsPlugin.info.name)
        if isinstance(loaded, NotificationsPlugin):
            await loaded.set_muted(request.app, request.muted)  # also updates the store
        else:
            await services.notifications.set_muted(device_id, request.app, request.muted)
        return {"apps": sorted(await services.notifications.muted_apps(device_id))}

    @router.get("/api/icons/{icon_hash}")
    async def icon(icon_hash: str) -> Response:
        if not _HASH.match(icon_hash) or services.home is None:
            raise HTTPException(404, "no such icon")
        path = services.home / "cache" / "icons" / f"{icon_hash}.img"
        try:
            data = path.read_bytes()
        except OSError:
            raise HTTPException(404, "no such icon") from None
        if not is_image(data):
            raise HTTPException(404, "no such icon")
        return Response(data, media_type=_image_type(data),
                        headers={"Cache-Control": "private, max-age=86400"})

    @router.get("/api/devices/{device_id}/calls")
    async def calls(device_id: str, limit: int = Query(200, ge=1, le=5000)) -> list[dict[str, Any]]:
        manager.get(device_id)
        return [c.to_json() for c in await services.calls.list(device_id, limit)]

    @router.post("/api/devices/{device_id}/mute")
    async def mute_ringer(device_id: str) -> dict[str, Any]:
        await telephony(device_id).mute()
        return {"sent": True}

    @router.get("/api/calls/current")
    async def current_calls() -> list[dict[str, Any]]:
        found = []
        for device in manager.devices.values():
            loaded = device.plugins.get(TelephonyPlugin.info.name)
            if isinstance(loaded, TelephonyPlugin) and loaded.current is not None:
                found.append({"device": device.id, **loaded.current})
        return found

    @router.get("/api/search")
    async def search(q: str = Query(..., max_length=1024),
                     kind: list[str] | None = Query(None),
                     limit: int = Query(100, ge=1, le=200)) -> list[dict[str, Any]]:
        if kind:
            unknown = [k for k in kind if k not in daemon.search.kinds]
            if unknown:
                raise DeviceError(f"unknown kind {unknown[0]!r}; kinds: {', '.join(daemon.search.kinds)}")
        return await daemon.search.search(q, kinds=kind, limit=limit)

    return router
