"""File, text and URL sharing and the transfers (DEVICE is a device id, TRANSFER a transfer id):
  POST /api/devices/{DEVICE}/share          {"paths": [...]} | {"text": "..."} | {"url": "..."}
                                            -> {"transfers": [transfer, ...]} (sending goes on)
  POST /api/devices/{DEVICE}/share/upload   multipart/form-data files from a browser: each is
                                            streamed to HOME/outgoing, shared, deleted when done
                                            -> {"transfers": [...]}
  GET  /api/transfers                       every transfer, newest first (core/transfers.py JSON)
  GET  /api/transfers/{TRANSFER}            one transfer
  POST /api/transfers/{TRANSFER}/cancel     cancel an active transfer
  POST /api/transfers/{TRANSFER}/reveal     show a received/sent file in the file manager
  POST /api/open-url                        {"url": "..."}: open a (received) http/https/mailto/tel URL
Events: "transfer.changed" with the transfer JSON as data (progress a few times a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from phonebridge.core.transfers import Transfer, TransferManager
from phonebridge.errors import DeviceError
from phonebridge.plugins.share import MAX_TEXT, SharePlugin, safe_filename

if TYPE_CHECKING:
    from phonebridge.app import Daemon

OPENABLE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
MAX_PATHS = 10_000
MAX_PART_HEADERS = 16 * 1024
"""A multipart part's headers longer than this are refused (a hostile or broken client)."""


class ShareRequest(BaseModel):
    paths: list[str] | None = Field(None, max_length=MAX_PATHS)
    text: str | None = Field(None, max_length=MAX_TEXT)
    url: str | None = Field(None, max_length=MAX_TEXT)


class OpenUrlRequest(BaseModel):
    url: str = Field(..., min_length=1, max_length=MAX_TEXT)


def router(daemon: Daemon) -> APIRouter:
    router = APIRouter()
    manager = daemon.manager
    assert manager is not None
    transfers: TransferManager = daemon.transfers
    outgoing = Path(daemon.settings.home) / "outgoing"

    def share_plugin(device_id: str) -> SharePlugin:
        plugin = manager.plugin(device_id, SharePlugin.info.name)
        assert isinstance(plugin, SharePlugin)
        return plugin

    @router.post("/api/devices/{device_id}/share")
    async def share(device_id: str, request: ShareRequest) -> dict[str, Any]:
        given = [x for x in (request.paths, request.text, request.url) if x is not None]
        if len(given) != 1:
            raise HTTPException(400, "give exactly one of paths, text, url")
        plugin = share_plugin(device_id)
        if request.paths is not None:
            sent = await plugin.share_files(absolute_paths(request.paths))
        elif request.text is not None:
            sent = [await plugin.share_text(request.text)]
        else:
            assert request.url is not None
            sent = [await plugin.share_url(request.url)]
        return {"transfers": [t.to_json() for t in sent]}

    @router.post("/api/devices/{device_id}/share/upload")
    async def upload(device_id: str, request: Request) -> dict[str, Any]:
        plugin = share_plugin(device_id)
        sent = await send_upload(request, outgoing, transfers, plugin.share_files)
        return {"transfers": [t.to_json() for t in sent]}

    @router.get("/api/transfers")
    async def list_transfers() -> list[dict[str, Any]]:
        return [t.to_json() for t in transfers.list()]

    @router.get("/api/transfers/{transfer_id}")
    async def get_transfer(transfer_id: str) -> dict[str, Any]:
        return transfers.get(transfer_id).to_json()

    @router.post("/api/transfers/{transfer_id}/cancel")
    async def cancel(transfer_id: str) -> dict[str, Any]:
        return transfers.cancel(transfer_id).to_json()

    @router.post("/api/transfers/{transfer_id}/reveal")
    async def reveal(transfer_id: str) -> dict[str, Any]:
        transfer = transfers.get(transfer_id)
        if transfer.kind != "file" or not transfer.path:
            raise DeviceError("this transfer has no file")
        path = Path(transfer.path)
        if not path.exists():
            raise DeviceError(f"{path} no longer exists")
        await daemon.desktop.opener.reveal(path)
        return {"revealed": str(path)}

    @router.post("/api/open-url")
    async def open_url(request: OpenUrlRequest) -> dict[str, Any]:
        url = request.url.strip()
        scheme = urlsplit(url).scheme.lower()
        if scheme not in OPENABLE_SCHEMES:
            raise HTTPException(400, f"only {', '.join(sorted(OPENABLE_SCHEMES))} URLs are opened")
        await daemon.desktop.opener.open_url(url)
        return {"opened": url}

    return router


def absolute_paths(values: list[str]) -> list[Path]:
    """Local files named by a client; 400 unless all are absolute (a relative one would depend on
    the daemon's working folder)."""
    paths = [Path(v) for v in values]
    relative = [str(p) for p in paths if not p.is_absolute()]
    if relative:
        raise HTTPException(400, f"paths must be absolute: {', '.join(relative[:3])}")
    return paths


async def send_upload(request: Request, outgoing: Path, transfers: TransferManager,
                      send: Callable[[list[Path]], Awaitable[list[Transfer]]]) -> list[Transfer]:
    """Stream a browser's upload into a new folder under `outgoing` and `send` the files from it.

    The folder goes once every transfer has ended, or at once when the upload or `send` fails.
    """
    folder = outgoing / secrets.token_hex(8)
    try:
        saved = await receive_multipart(request, folder)
        if not saved:
            raise HTTPException(400, "no files in the upload")
        sent = await send(saved)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    left = {t.id for t in sent}

    def finished(transfer: Transfer) -> None:
        left.discard(transfer.id)
        if not left:
            shutil.rmtree(folder, ignore_errors=True)

    for transfer in sent:
        transfers.add_done_callback(transfer, finished)
    if not sent:
        shutil.rmtree(folder, ignore_errors=True)
    return sent


# -- a small streaming multipart/form-data reader (no python-multipart dependency) -----------------

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*(?:[\w-]+)?'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))', re.IGNORECASE)


def part_filename(headers: bytes) -> str | None:
    """The file name of a part from its Content-Disposition, None for a plain form field."""
    text = headers.decode("utf-8", "replace")
    disposition = next((line for line in text.split("\r\n")
                        if line.lower().startswith("content-disposition:")), "")
    match = _FILENAME_STAR.search(disposition)
    if match:
        return unquote(match.group(1).strip())
    match = _FILENAME.search(disposition)
    if match is None:
        return None
    value = match.group(1) if match.group(1) is not None else match.group(2).strip()
    return value.replace('\\"', '"')


async def receive_multipart(request: Request, folder: Path) -> list[Path]:
    """Stream every file part of the request into `folder` (one file per part); returns paths."""
    found = _BOUNDARY.search(request.headers.get("content-type", ""))
    if found is None:
        raise HTTPException(400, "expected multipart/form-data with a boundary")
    delimiter = b"\r\n--" + (found.group(1) or found.group(2)).encode("latin-1")
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    buffer = b"\r\n"
    state = "preamble"
    out = None
    try:
        async for chunk in request.stream():
            buffer += chunk
            while True:
                if state == "preamble":
                    index = buffer.find(delimiter)
                    if index < 0:
                        buffer = buffer[-len(delimiter):]
                        break
                    buffer = buffer[index + len(delimiter):]
                    state = "after"
                elif state == "after":
                    if len(buffer) < 2:
                        break
                    if buffer.startswith(b"--"):
                        return saved
                    buffer = buffer[2:]  # CRLF after the delimiter
                    state = "headers"
                elif state == "headers":
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > MAX_PART_HEADERS:
                            raise HTTPException(400, "multipart headers too long")
                        break
                    name = part_filename(buffer[:end])
                    buffer = buffer[end + 4:]
                    if name is not None:
                        target = _unique(folder, safe_filename(name, "upload"))
                        out = open(target, "xb")  # noqa: SIM115 - closed when the part ends
                        saved.append(target)
                    state = "body"
                else:  # body
                    index = buffer.find(delimiter)
                    if index < 0:
                        keep = len(delimiter)
                        if out is not None and len(buffer) > keep:
                            out.write(buffer[:-keep])
                        buffer = buffer[-keep:] if len(buffer) > keep else buffer
                        break
                    if out is not None:
                        out.write(buffer[:index])
                        out.close()
                        out = None
                    buffer = buffer[index + len(delimiter):]
                    state = "after"
    finally:
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()
    raise HTTPException(400, "the upload ended early")


def _unique(folder: Path, name: str) -> Path:
    target = folder / name
    n = 1
    while target.exists():
        stem, dot, ext = name.rpartition(".")
        target = folder / (f"{stem} ({n}).{ext}" if dot and stem else f"{name} ({n})")
        n += 1
    return target
