"""mDNS / DNS-SD for `_kdeconnect._udp` with zeroconf (PROTOCOL.md §3.4).

mDNS is only a trigger: we announce our id, name, type and version, and when we resolve another
device we send it our UDP identity by unicast so it dials us (what KDE and Android do).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from phonebridge.protocol.constants import MDNS_SERVICE_TYPE
from phonebridge.protocol.identity import Identity

log = logging.getLogger(__name__)


class MdnsDiscovery:
    def __init__(
        self,
        identity: Callable[[], Identity],
        announce_to: Callable[[str], None],
        bind_addresses: list[str],
    ) -> None:
        self._identity = identity
        self._announce_to = announce_to
        self._binds = [a for a in bind_addresses if ":" not in a]
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, port: int) -> None:
        me = self._identity()
        try:
            interfaces = self._binds or None
            if interfaces:
                self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
            else:
                self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
            addresses = [socket.inet_aton(a) for a in self._binds if not a.startswith("127.")]
            self._info = AsyncServiceInfo(
                MDNS_SERVICE_TYPE,
                f"{me.device_id}.{MDNS_SERVICE_TYPE}",
                port=port,
                properties={
                    "id": me.device_id,
                    "name": me.name,
                    "type": me.device_type,
                    "protocol": str(me.protocol_version),
                },
                server=f"{me.device_id}.local.",
                addresses=addresses or None,
            )
            await self._zc.async_register_service(self._info, allow_name_change=False)
            self._browser = AsyncServiceBrowser(
                self._zc.zeroconf, MDNS_SERVICE_TYPE, handlers=[self._on_change]
            )
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("mDNS disabled: %s", exc)
            await self.stop()

    async def stop(self) -> None:
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._zc is not None:
            try:
                if self._info is not None:
                    await self._zc.async_unregister_service(self._info)
            except Exception as exc:  # noqa: BLE001 - shutting down; nothing to save
                log.debug("mDNS unregister: %s", exc)
            await self._zc.async_close()
            self._zc = None

    def _on_change(self, zeroconf, service_type: str, name: str, state_change) -> None:  # noqa: ANN001
        if state_change not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        if name.startswith(self._identity().device_id + "."):
            return
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        if self._zc is None:
            return
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        for address in info.parsed_addresses(IPVersion.V4Only):
            log.info("mDNS found %s at %s", name, address)
            self._announce_to(address)
