"""The API application: routes over the Daemon facade, the event WebSocket, the static web UI.

Routes are defined per feature in api/routes/*.py, one line each in their docstrings;
this module adds the event WebSocket and the web UI:
  WS   /api/events?token=TOKEN          live events: {"type", "device", "data", "time"}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from importlib import resources
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from phonebridge import __version__
from phonebridge.errors import DeviceError, UnknownDeviceError
from .routes import clipboard, devices
from .routes import notifications
from .routes import files
from .routes import messages
from .routes import photos
from .security import LocalGuard

FEATURES = (devices, clipboard, notifications, files, messages, photos)
"""Route modules: each has `router(daemon) -> APIRouter`. One line per feature."""

if TYPE_CHECKING:
    from phonebridge.app import Daemon

log = logging.getLogger(__name__)


def create_app(daemon: Daemon) -> FastAPI:
    app = FastAPI(title="PhoneBridge API", version=__version__, docs_url=None, redoc_url=None)

    @app.exception_handler(DeviceError)
    async def device_error(_request: Any, exc: DeviceError) -> JSONResponse:
        status = 404 if isinstance(exc, UnknownDeviceError) else 409
        return JSONResponse({"error": str(exc)}, status_code=status)

    for feature in FEATURES:
        app.include_router(feature.router(daemon))

    @app.websocket("/api/events")
    async def events(ws: WebSocket) -> None:
        await ws.accept()
        with daemon.bus.subscribe() as sub:
            await ws.send_json({"type": "hello", "device": None, "data": daemon.status(), "time": 0})
            receiver = asyncio.get_running_loop().create_task(ws.receive_text())
            try:
                while True:
                    getter = asyncio.ensure_future(sub.get())
                    done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                    if receiver in done:
                        getter.cancel()
                        receiver.result()  # raises WebSocketDisconnect when the client left
                        receiver = asyncio.get_running_loop().create_task(ws.receive_text())
                        continue
                    await ws.send_json(getter.result().to_json())
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                receiver.cancel()

    @app.get("/api/{rest:path}", include_in_schema=False)
    async def not_found(rest: str) -> None:
        raise HTTPException(404, f"no such endpoint /api/{rest}")

    web = resources.files("phonebridge") / "web"
    app.mount("/", StaticFiles(directory=str(web), html=True), name="web")
    return app


def create_api_server(daemon: Daemon, sock: socket.socket) -> uvicorn.Server:
    port = sock.getsockname()[1]
    app = LocalGuard(create_app(daemon), port=port, token=daemon.token)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio",
                            access_log=False)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the daemon owns signals
    return server
