"""Photos and phone files routes (DEVICE is a device id; P a phone path such as
/storage/emulated/0/DCIM/Camera/PXL_20240101_120000000.jpg):
  GET  /api/devices/{DEVICE}/photos                 ?offset=0&limit=60&refresh=0: the gallery, newest
                                                    first: {items: [{path, name, size, date (ms), kind:
                                                    "image"|"video", width, height, folder, error}],
                                                    total, complete, errors: [{path, reason}]}
  GET  /api/devices/{DEVICE}/photos/thumbnail       ?path=P: a JPEG (cached by the browser);
                                                    404 {"error": "no preview"} (videos, unknown
                                                    formats), 422 {"error": "broken image ..."}
  GET  /api/devices/{DEVICE}/photos/original        ?path=P[&download=1]: the file, streamed with its
                                                    type and length (download=1: as an attachment)
  POST /api/devices/{DEVICE}/pull                   {"paths": [P, ...], "to": DIR (default: the
                                                    download folder)} -> {"transfers": [...]}: copies
                                                    go on; whole files with their dates, or nothing
  GET  /api/devices/{DEVICE}/phone-files            ?path=P: {path, roots: [{path, name}], entries:
                                                    [{name, path, size, is_dir, date}]} (dirs first);
                                                    no path: the storage roots as entries (path null)
  POST /api/devices/{DEVICE}/push                   {"paths": [local absolute files], "to": P (a
                                                    folder)} -> {"transfers": [...]}
  POST /api/devices/{DEVICE}/push/upload            ?to=P, multipart/form-data files from a browser:
                                                    kept in HOME/outgoing until sent -> {"transfers"}
Phone errors answer {"error"}: 404 for a missing phone path (or an unknown device), 403 for a
refused one, 409 otherwise (not paired, not reachable, the phone refused or dropped the session).
Bad input answers {"detail"}: 400 for a relative phone path, '.' or '..' in it, a NUL, a missing
local file; 422 for a malformed body, an empty or too long list, an out-of-range page.
Events: "transfer.changed" as for shares (direction "in" for pull, "out" for push).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from phonebridge.core.phonefiles import PhoneEntry, PhoneFileError, PhoneFiles
from phonebridge.gallery import PhotoError
from phonebridge.plugins.share import safe_filename

from .files import absolute_paths, send_upload

if TYPE_CHECKING:
    from phonebridge.app import Daemon
    from phonebridge.core.transfers import Transfer

MAX_PATHS = 10_000
"""Paths in one pull or push: enough for a whole camera roll, bounded for a hostile client."""
MAX_PATH_CHARS = 4096
"""Linux's PATH_MAX: a longer phone path cannot exist."""
MAX_PAGE = 500
"""Photos in one page of the gallery."""
THUMBNAIL_MAX_AGE = 86_400
"""Seconds the browser may keep a thumbnail (the web UI adds the photo's size and date to the URL)."""
INLINE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/heic",
                "image/heif", "image/avif", "image/tiff")
"""Content types an original is served as; any other (HTML, SVG, ...) is sent as bytes to save, as
phone files are untrusted and this origin holds the API token."""
PHONE_ERROR_STATUS = {"not found": 404, "permission denied": 403}
_MEDIA_TYPE = re.compile(r"(?:video|audio)/[a-z0-9][a-z0-9.+-]*")


class PullRequest(BaseModel):
    paths: list[str] = Field(..., min_length=1, max_length=MAX_PATHS)
    to: str | None = Field(None, max_length=MAX_PATH_CHARS)


class PushRequest(BaseModel):
    paths: list[str] = Field(..., min_length=1, max_length=MAX_PATHS)
    to: str = Field(..., min_length=1, max_length=MAX_PATH_CHARS)


def phone_path(value: str) -> str:
    """An absolute phone path, normalised ("//a/b/" -> "/a/b"); HTTP 400 for anything else.

    Odd names (spaces, quotes, '#', '%', emoji, a leading '-') are fine; NUL, '.' and '..'
    components and relative paths are refused, so a client cannot step outside what it named.
    """
    if not isinstance(value, str) or not value.startswith("/"):
        raise HTTPException(400, f"not an absolute phone path: {str(value)[:200]!r}")
    if len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise HTTPException(400, "not a usable phone path (too long or with a NUL)")
    parts = [p for p in value.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise HTTPException(400, f"phone paths may not contain '.' or '..': {value[:200]!r}")
    return "/" + "/".join(parts)


def local_folder(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise HTTPException(400, f"the target folder must be an absolute path: {value[:200]!r}")
    if path.exists() and not path.is_dir():
        raise HTTPException(400, f"{path} is not a folder")
    return path


def served_type(content_type: str | None, name: str) -> str:
    """The content type an original goes out as (see INLINE_TYPES)."""
    kind = (content_type or mimetypes.guess_type(name)[0] or "").split(";")[0].strip().lower()
    if kind in INLINE_TYPES or _MEDIA_TYPE.fullmatch(kind):
        return kind
    return "application/octet-stream"


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name (filename*)."""
    safe = safe_filename(name, "photo")
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in safe)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(safe, safe='')}"


def phone_error(exc: PhoneFileError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=PHONE_ERROR_STATUS.get(exc.reason, 409))


def transfers_json(transfers: list[Transfer]) -> dict[str, Any]:
    return {"transfers": [t.to_json() for t in transfers]}


def router(daemon: Daemon) -> APIRouter:
    router = APIRouter()
    manager = daemon.manager
    assert manager is not None
    outgoing = Path(daemon.settings.home) / "outgoing"

    def gallery() -> Any:
        return daemon.gallery

    async def phone_files(device_id: str) -> PhoneFiles:
        plugin = manager.plugin(device_id, "sftp")
        return await plugin.files()  # type: ignore[attr-defined]

    @router.get("/api/devices/{device_id}/photos")
    async def photos(device_id: str, offset: int = Query(0, ge=0, le=10_000_000),
                     limit: int = Query(60, ge=1, le=MAX_PAGE), refresh: bool = False) -> dict[str, Any]:
        manager.get(device_id)
        return await gallery().photos(device_id, offset=offset, limit=limit, refresh=refresh)

    @router.get("/api/devices/{device_id}/photos/thumbnail")
    async def thumbnail(device_id: str, path: str = Query(..., max_length=MAX_PATH_CHARS)) -> Response:
        manager.get(device_id)
        path = phone_path(path)
        try:
            data = await gallery().thumbnail(device_id, path)
        except PhotoError as exc:
            reason = str(getattr(exc, "reason", "") or exc)
            message = reason if reason.startswith("broken image") else f"broken image: {reason}"
            return JSONResponse({"error": message}, status_code=422)
        except PhoneFileError as exc:
            return phone_error(exc)
        if data is None:
            return JSONResponse({"error": "no preview"}, status_code=404)
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": f"private, max-age={THUMBNAIL_MAX_AGE}"})

    @router.get("/api/devices/{device_id}/photos/original")
    async def original(device_id: str, path: str = Query(..., max_length=MAX_PATH_CHARS),
                       download: bool = False) -> Response:
        manager.get(device_id)
        path = phone_path(path)
        try:
            size, content_type, chunks = await gallery().original(device_id, path)
        except PhoneFileError as exc:
            return phone_error(exc)
        name = path.rsplit("/", 1)[-1]
        kind = served_type(content_type, name)
        headers = {
            "Content-Length": str(size),
            "Cache-Control": "private, no-store",
            # A file of the phone never runs as a page of this origin, even when opened directly.
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
            "Content-Disposition": content_disposition("attachment" if download else "inline", name),
        }
        return StreamingResponse(_closing(chunks), media_type=kind, headers=headers)

    @router.post("/api/devices/{device_id}/pull")
    async def pull(device_id: str, request: PullRequest) -> Any:
        paths = [phone_path(p) for p in request.paths]
        target = local_folder(request.to) if request.to else Path(daemon.settings.downloads)
        manager.get(device_id)
        try:
            return transfers_json(await gallery().pull(device_id, paths, target))
        except PhoneFileError as exc:
            return phone_error(exc)

    @router.get("/api/devices/{device_id}/phone-files")
    async def list_phone_files(device_id: str,
                               path: str | None = Query(None, max_length=MAX_PATH_CHARS)) -> Any:
        wanted = phone_path(path) if path else None
        files = await phone_files(device_id)
        roots = [r.to_json() for r in files.roots]
        try:
            if wanted is None:
                entries = [await _root_entry(files, r.path, r.name) for r in files.roots]
            else:
                entries = [e.to_json() for e in await files.list_dir(wanted)]
        except PhoneFileError as exc:
            return phone_error(exc)
        return {"path": wanted, "roots": roots, "entries": entries}

    @router.post("/api/devices/{device_id}/push")
    async def push(device_id: str, request: PushRequest) -> Any:
        to = phone_path(request.to)
        local = absolute_paths(request.paths)
        missing = [str(p) for p in local if not p.is_file()]
        if missing:
            raise HTTPException(400, f"no such file: {', '.join(missing[:3])}")
        files = await phone_files(device_id)
        try:
            return transfers_json(await files.push(local, to))
        except PhoneFileError as exc:
            return phone_error(exc)

    @router.post("/api/devices/{device_id}/push/upload")
    async def push_upload(device_id: str, request: Request,
                          to: str = Query(..., max_length=MAX_PATH_CHARS)) -> Any:
        target = phone_path(to)
        files = await phone_files(device_id)
        try:
            sent = await send_upload(request, outgoing, daemon.transfers,
                                     lambda saved: files.push(saved, target))
        except PhoneFileError as exc:  # the folder is gone already
            return phone_error(exc)
        return transfers_json(sent)

    return router


async def _root_entry(files: PhoneFiles, path: str, name: str) -> dict[str, Any]:
    """A storage root as a folder entry named by its description ("SD card")."""
    try:
        date = (await files.stat(path)).date
    except PhoneFileError:
        date = None
    return PhoneEntry(name=name, path=path, size=0, is_dir=True, date=date).to_json()


async def _closing(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Relay the chunks and close the source when the client goes away mid-file."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
