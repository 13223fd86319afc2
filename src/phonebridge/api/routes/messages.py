"""Texts and contacts routes (DEVICE is a device id; THREAD a thread id; ID a message id):
  GET  /api/devices/{DEVICE}/messages                   threads, newest first
  GET  /api/devices/{DEVICE}/messages/{THREAD}          messages oldest first (?limit=N, ?before=MS)
  POST /api/devices/{DEVICE}/messages/send              {"addresses": [..], "body", "attachments":
                                                         [{"name", "mime_type", "data" (base64)}],
                                                         "sub_id", "timeout"}: waits for the phone;
                                                         {"status": "sent"|"failed", ...}
  GET  /api/devices/{DEVICE}/messages/attachments/{ID}/{PART}            the file (fetched on demand)
  GET  /api/devices/{DEVICE}/messages/attachments/{ID}/{PART}/thumbnail  the phone's thumbnail
  GET  /api/devices/{DEVICE}/sync                       {state, threads, messages, threads_complete}
  POST /api/devices/{DEVICE}/sync                       start a sync now ({"started": bool})
  GET  /api/devices/{DEVICE}/contacts                   [{uid, name, numbers, timestamp, has_photo}]
  GET  /api/devices/{DEVICE}/contacts/{UID}/photo       the contact's photo
Events: messages.changed ({threads: [id], new, changed}), sync.progress ({state, threads, messages,
threads_complete}), contacts.changed ({count}).
Search over messages is /api/search (kind "message", store/search.py).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from phonebridge.plugins.sms import SEND_TIMEOUT, SmsPlugin

if TYPE_CHECKING:
    from phonebridge.app import Daemon

MAX_BODY = 64 * 1024
MAX_ATTACHMENT_B64 = 20 * 1024 * 1024


class AttachmentIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=255)
    mime_type: str = Field("application/octet-stream", max_length=255)
    data: str = Field(..., max_length=MAX_ATTACHMENT_B64)


class SendRequest(BaseModel):
    addresses: list[str] = Field(..., min_length=1, max_length=50)
    body: str = Field("", max_length=MAX_BODY)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10)
    sub_id: int | None = None
    timeout: float = Field(SEND_TIMEOUT, gt=0, le=600)


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data.startswith(b"RIFF"):
        return "image/webp"
    return "image/jpeg"


def router(daemon: Daemon) -> APIRouter:
    router = APIRouter()
    manager = daemon.manager
    assert manager is not None
    services = daemon.services

    def plugin(device_id: str) -> SmsPlugin:
        found = manager.plugin(device_id, SmsPlugin.info.name)
        assert isinstance(found, SmsPlugin)
        return found

    @router.get("/api/devices/{device_id}/messages")
    async def threads(device_id: str) -> list[dict[str, Any]]:
        manager.get(device_id)
        return await services.messages.threads(device_id)

    @router.get("/api/devices/{device_id}/messages/{thread_id}")
    async def thread(device_id: str, thread_id: int, limit: int | None = Query(None, ge=1, le=100_000),
                     before: int | None = None) -> list[dict[str, Any]]:
        manager.get(device_id)
        return await services.messages.messages(device_id, thread_id, limit=limit, before=before)

    @router.post("/api/devices/{device_id}/messages/send")
    async def send(device_id: str, request: SendRequest) -> dict[str, Any]:
        files = []
        for a in request.attachments:
            try:
                files.append((a.name, a.mime_type, base64.b64decode(a.data, validate=True)))
            except (binascii.Error, ValueError):
                raise HTTPException(422, f"attachment {a.name!r} is not base64") from None
        return await plugin(device_id).send_message(request.addresses, request.body, files,
                                                    request.sub_id, request.timeout)

    @router.get("/api/devices/{device_id}/messages/attachments/{message_id}/{part_id}")
    async def attachment(device_id: str, message_id: int, part_id: int) -> FileResponse:
        path, mime = await plugin(device_id).attachment_file(message_id, part_id)
        return FileResponse(path, media_type=mime, headers={"Cache-Control": "private, max-age=86400"})

    @router.get("/api/devices/{device_id}/messages/attachments/{message_id}/{part_id}/thumbnail")
    async def thumbnail(device_id: str, message_id: int, part_id: int) -> Response:
        manager.get(device_id)
        info = await services.messages.attachment(device_id, message_id, part_id)
        if info is None or not info.get("thumbnail"):
            raise HTTPException(404, "no thumbnail")
        data = base64.b64decode(info["thumbnail"])
        return Response(data, media_type=_image_type(data),
                        headers={"Cache-Control": "private, max-age=86400"})

    @router.get("/api/devices/{device_id}/sync")
    async def sync_status(device_id: str) -> dict[str, Any]:
        device = manager.get(device_id)
        loaded = device.plugins.get(SmsPlugin.info.name)
        if isinstance(loaded, SmsPlugin):
            return await loaded.sync_status()
        counts = await services.messages.counts(device_id)
        return {"state": "offline", **counts}

    @router.post("/api/devices/{device_id}/sync")
    async def sync_now(device_id: str) -> dict[str, Any]:
        return {"started": plugin(device_id).start_sync()}

    @router.get("/api/devices/{device_id}/contacts")
    async def contacts(device_id: str) -> list[dict[str, Any]]:
        manager.get(device_id)
        return await services.contacts.all(device_id)

    @router.get("/api/devices/{device_id}/contacts/{uid}/photo")
    async def photo(device_id: str, uid: str) -> Response:
        manager.get(device_id)
        data = await services.contacts.photo(device_id, uid)
        if not data:
            raise HTTPException(404, "no photo")
        raw = base64.b64decode(data)
        return Response(raw, media_type=_image_type(raw),
                        headers={"Cache-Control": "private, max-age=3600"})

    return router

