"""The API application: routes over the Daemon facade, the event WebSocket, the static web UI.

Routes (one line each; DEVICE is a device id):
  GET  /api/status                      daemon status
  GET  /api/devices                     every known device (see Device.to_json for the fields)
  GET  /api/devices/{DEVICE}            one device
  POST /api/devices/{DEVICE}/pair       accept its request, else send ours ({"wait": true} waits)
  POST /api/devices/{DEVICE}/reject     reject its pending request
  POST /api/devices/{DEVICE}/unpair     unpair (also forgets a changed certificate)
  POST /api/devices/{DEVICE}/ping       {"message": "..."} optional
  POST /api/devices/{DEVICE}/ring       ring the phone
  POST /api/connect                     {"host": "...", "port": 1716}: link to an address
  POST /api/refresh                     announce ourselves again
  POST /api/shutdown                    stop the daemon
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
from pydantic import BaseModel, Field

from phonebridge import __version__
from phonebridge.errors import DeviceError
from phonebridge.plugins.findmyphone import FindMyPhonePlugin
from phonebridge.plugins.ping import PingPlugin
from phonebridge.protocol.constants import PAIR_TIMEOUT

from .security import LocalGuard

if TYPE_CHECKING:
    from phonebridge.app import Daemon

log = logging.getLogger(__name__)


class PairRequest(BaseModel):
    wait: bool = Field(False, description="wait until the peer answers our request")
    timeout: float = Field(PAIR_TIMEOUT + 5, ge=0, le=120)


class PingRequest(BaseModel):
    message: str | None = Field(None, max_length=4096)


class ConnectRequest(BaseModel):
    host: str = Field(..., min_length=1, max_length=255)
    port: int = Field(1716, ge=1, le=65535)


def create_app(daemon: Daemon) -> FastAPI:
    app = FastAPI(title="PhoneBridge API", version=__version__, docs_url=None, redoc_url=None)
    manager = daemon.manager
    assert manager is not None

    @app.exception_handler(DeviceError)
    async def device_error(_request: Any, exc: DeviceError) -> JSONResponse:
        status = 404 if str(exc).startswith("unknown device") else 409
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return daemon.status()

    @app.get("/api/devices")
    async def devices() -> list[dict[str, Any]]:
        return daemon.devices()

    @app.get("/api/devices/{device_id}")
    async def device(device_id: str) -> dict[str, Any]:
        return manager.get(device_id).to_json()

    @app.post("/api/devices/{device_id}/pair")
    async def pair(device_id: str, request: PairRequest | None = None) -> dict[str, Any]:
        request = request or PairRequest()
        dev = await manager.pair(device_id)
        if request.wait:
            try:
                dev = await manager.wait_for_pair_result(device_id, request.timeout)
            except TimeoutError:
                raise DeviceError(f"{dev.identity.name} did not answer the pair request") from None
        return dev.to_json()

    @app.post("/api/devices/{device_id}/reject")
    async def reject(device_id: str) -> dict[str, Any]:
        return (await manager.reject(device_id)).to_json()

    @app.post("/api/devices/{device_id}/unpair")
    async def unpair(device_id: str) -> dict[str, Any]:
        return (await manager.unpair(device_id)).to_json()

    @app.post("/api/devices/{device_id}/ping")
    async def ping(device_id: str, request: PingRequest | None = None) -> dict[str, Any]:
        plugin = manager.plugin(device_id, PingPlugin.info.name)
        assert isinstance(plugin, PingPlugin)
        sent = await plugin.ping((request or PingRequest()).message)
        if not sent:
            raise DeviceError("the device does not accept pings")
        return {"sent": True}

    @app.post("/api/devices/{device_id}/ring")
    async def ring(device_id: str) -> dict[str, Any]:
        plugin = manager.plugin(device_id, FindMyPhonePlugin.info.name)
        assert isinstance(plugin, FindMyPhonePlugin)
        if not await plugin.ring():
            raise DeviceError("the device cannot be rung")
        return {"sent": True}

    @app.post("/api/connect")
    async def connect(request: ConnectRequest) -> dict[str, Any]:
        return await daemon.connect(request.host, request.port)

    @app.post("/api/refresh")
    async def refresh() -> dict[str, Any]:
        daemon.refresh()
        return {"sent": True}

    @app.post("/api/shutdown")
    async def shutdown() -> dict[str, Any]:
        daemon.request_stop()
        return {"stopping": True}

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
