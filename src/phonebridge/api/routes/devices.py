"""Device routes (DEVICE is a device id):
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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from phonebridge.errors import DeviceError
from phonebridge.plugins.findmyphone import FindMyPhonePlugin
from phonebridge.plugins.ping import PingPlugin
from phonebridge.protocol.constants import PAIR_TIMEOUT

if TYPE_CHECKING:
    from phonebridge.app import Daemon


class PairRequest(BaseModel):
    wait: bool = Field(False, description="wait until the peer answers our request")
    timeout: float = Field(PAIR_TIMEOUT + 5, ge=0, le=120)


class PingRequest(BaseModel):
    message: str | None = Field(None, max_length=4096)


class ConnectRequest(BaseModel):
    host: str = Field(..., min_length=1, max_length=255)
    port: int = Field(1716, ge=1, le=65535)


def router(daemon: Daemon) -> APIRouter:
    router = APIRouter()
    manager = daemon.manager
    assert manager is not None

    @router.get("/api/status")
    async def status() -> dict[str, Any]:
        return daemon.status()

    @router.get("/api/devices")
    async def devices() -> list[dict[str, Any]]:
        return daemon.devices()

    @router.get("/api/devices/{device_id}")
    async def device(device_id: str) -> dict[str, Any]:
        return manager.get(device_id).to_json()

    @router.post("/api/devices/{device_id}/pair")
    async def pair(device_id: str, request: PairRequest | None = None) -> dict[str, Any]:
        request = request or PairRequest()
        dev = await manager.pair(device_id)
        if request.wait:
            try:
                dev = await manager.wait_for_pair_result(device_id, request.timeout)
            except TimeoutError:
                raise DeviceError(f"{dev.identity.name} did not answer the pair request") from None
        return dev.to_json()

    @router.post("/api/devices/{device_id}/reject")
    async def reject(device_id: str) -> dict[str, Any]:
        return (await manager.reject(device_id)).to_json()

    @router.post("/api/devices/{device_id}/unpair")
    async def unpair(device_id: str) -> dict[str, Any]:
        return (await manager.unpair(device_id)).to_json()

    @router.post("/api/devices/{device_id}/ping")
    async def ping(device_id: str, request: PingRequest | None = None) -> dict[str, Any]:
        plugin = manager.plugin(device_id, PingPlugin.info.name)
        assert isinstance(plugin, PingPlugin)
        sent = await plugin.ping((request or PingRequest()).message)
        if not sent:
            raise DeviceError("the device does not accept pings")
        return {"sent": True}

    @router.post("/api/devices/{device_id}/ring")
    async def ring(device_id: str) -> dict[str, Any]:
        plugin = manager.plugin(device_id, FindMyPhonePlugin.info.name)
        assert isinstance(plugin, FindMyPhonePlugin)
        if not await plugin.ring():
            raise DeviceError("the device cannot be rung")
        return {"sent": True}

    @router.post("/api/connect")
    async def connect(request: ConnectRequest) -> dict[str, Any]:
        return await daemon.connect(request.host, request.port)

    @router.post("/api/refresh")
    async def refresh() -> dict[str, Any]:
        daemon.refresh()
        return {"sent": True}

    @router.post("/api/shutdown")
    async def shutdown() -> dict[str, Any]:
        daemon.request_stop()
        return {"stopping": True}

    return router
