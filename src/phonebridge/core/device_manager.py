"""DeviceManager: links in, devices out. Trust policy, pairing, plugin loading, reconnects.

Rules:
1. A paired device is pinned to its certificate: a link from its id with another certificate is
   closed and the device is marked `certificate_changed`; it is never silently re-paired.
2. A paired device that announces a lower protocol version than stored is refused (downgrade).
3. An unpaired device can only identify and exchange `kdeconnect.pair`; anything else is dropped
   (and answered once with `pair:false`, as KDE and Android do).
4. A malformed packet is dropped and logged once per link; a plugin error is logged with device,
   plugin and type and the link stays up. Framing or TLS errors end only that link.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from phonebridge.core.device import Device
from phonebridge.core.plugin import Plugin, PluginContext
from phonebridge.core.services import Services
from phonebridge.desktop.base import Desktop
from phonebridge.errors import DeviceError, UnknownDeviceError
from phonebridge.events import Event, EventBus
from phonebridge.protocol import types
from phonebridge.protocol.certs import verification_key
from phonebridge.protocol.errors import LocalProtocolError
from phonebridge.protocol.framing import BadLine
from phonebridge.protocol.identity import Identity
from phonebridge.protocol.packet import Packet
from phonebridge.protocol.pairing import (
    Action,
    PairState,
    RequestRefused,
    SendPacket,
    StateChanged,
    pair_packet,
)
from phonebridge.store.devices import DeviceRepository, TrustedDevice
from phonebridge.transports.base import Link

log = logging.getLogger(__name__)

RECONNECT_BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""Seconds between attempts to reach a paired device that dropped; the last value repeats."""


class DeviceManager:
    def __init__(
        self,
        *,
        identity: Identity,
        certificate: bytes,
        plugins: tuple[type[Plugin], ...],
        repository: DeviceRepository,
        bus: EventBus,
        desktop: Desktop,
        clock: Callable[[], float] = time.time,
        services: Services | None = None,
    ) -> None:
        self.identity = identity
        self.certificate = certificate
        self._plugin_classes = plugins
        self._repo = repository
        self.bus = bus
        self.desktop = desktop
        self._clock = clock
        self.services = services or Services()
        self.devices: dict[str, Device] = {}
        self._tasks: set[asyncio.Task] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._reconnecting: set[str] = set()
        self._stopping = False
        self._revision = 0
        self.dial: Callable[[str, int, Identity | None], Awaitable[Any]] | None = None
        self.announce_to: Callable[[str], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        for trusted in await self._repo.all():
            identity = Identity(trusted.id, trusted.name, trusted.type, trusted.protocol_version)
            self.devices[trusted.id] = Device(identity, trusted)

    def start_reconnects(self) -> None:
        for device in self.devices.values():
            if device.is_paired and not device.is_reachable:
                self._schedule_reconnect(device)

    async def stop(self) -> None:
        self._stopping = True  # closing the links below must not schedule reconnects
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for device in list(self.devices.values()):
            if device.link is not None:
                await device.link.close("daemon stopping")
        for task in list(self._tasks):  # anything the closing links started
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- queries --------------------------------------------------------------------------------

    def is_linked(self, device_id: str) -> bool:
        device = self.devices.get(device_id)
        return device is not None and device.is_reachable

    def known_identity(self, device_id: str) -> Identity | None:
        device = self.devices.get(device_id)
        return device.identity if device else None

    def get(self, device_id: str) -> Device:
        try:
            return self.devices[device_id]
        except KeyError:
            raise UnknownDeviceError(f"unknown device {device_id}") from None

    def _changed(self, device: Device) -> None:
        if self.devices.get(device.id) is not device:
            return  # removed: its "device.removed" event was the last word
        self._revision += 1
        device.revision = self._revision
        self.bus.publish(Event("device.changed", device.id, device.to_json()))

    # -- links ----------------------------------------------------------------------------------

    async def on_link(self, link: Link) -> None:
        """A transport established a link; decide whether to keep it."""
        peer = link.identity
        device = self.devices.get(peer.device_id)
        if device is not None and device.trusted is not None:
            if link.certificate != device.trusted.certificate:
                if not device.certificate_changed:
                    log.warning("%s (%r) presented a different certificate: refused; unpair it to"
                                " pair again", peer.device_id, peer.name)
                device.certificate_changed = True
                device.refused_reason = "certificate changed"
                await link.close("certificate changed")
                self._changed(device)
                self.bus.publish(Event("device.certificate_changed", device.id, {}))
                return
            if peer.protocol_version < device.trusted.protocol_version:
                log.warning("%s announced protocol %d after %d: downgrade refused", peer.device_id,
                            peer.protocol_version, device.trusted.protocol_version)
                device.refused_reason = "protocol downgrade"
                await link.close("protocol downgrade")
                self._changed(device)
                return
        if device is None:
            device = Device(peer)
            self.devices[peer.device_id] = device
        old = device.link
        if old is not None:
            device.link = None
            await old.close("replaced by a newer connection")
            # A pending request, and the key the user is comparing, belong to the old link.
            await self._apply(device, device.session.link_lost())
        device.identity = peer
        device.session.peer_version = peer.protocol_version
        device.link = link
        device.refused_reason = None
        device.certificate_changed = False
        device.told_unpaired = False
        device.touch()
        log.info("linked to %s (%r, protocol %d, %s)", peer.device_id, peer.name,
                 peer.protocol_version, "paired" if device.is_paired else "not paired")
        if device.is_paired:
            # Plugins first: what a phone sends right after connecting (battery...) needs them.
            self._instantiate_plugins(device)
        self._spawn(self._read(device, link))
        if device.is_paired:
            await self._remember(device)
            await self._start_plugins(device)
        self._changed(device)

    async def _read(self, device: Device, link: Link) -> None:
        bad_logged = False
        try:
            async for item in link.packets():
                if isinstance(item, BadLine):
                    if not bad_logged:
                        log.warning("dropping malformed packet from %s: %s", device.id, item.reason)
                        bad_logged = True
                    continue
                device.touch()
                await self._dispatch(device, link, item)
        finally:
            reason = getattr(link, "close_reason", None)
            await link.close()
            if device.link is link:
                log.info("link to %s closed: %s", device.id, reason)
                device.link = None
                self._unload_plugins(device)
                await self._apply(device, device.session.link_lost())
                if device.is_paired:
                    self._schedule_reconnect(device)
                else:
                    self.devices.pop(device.id, None)
                    self.bus.publish(Event("device.removed", device.id, {}))
                self._changed(device)

    async def _dispatch(self, device: Device, link: Link, packet: Packet) -> None:
        if packet.type == types.PAIR:
            await self._apply(device, device.session.receive(packet, self._clock()))
            return
        if packet.type == types.IDENTITY:
            return
        if not device.is_paired:
            log.info("dropping %s from unpaired device %s", packet.type, device.id)
            if device.session.state is PairState.UNPAIRED and not device.told_unpaired:
                device.told_unpaired = True
                await self._send(device, pair_packet(False))
            return
        plugin = device.router.get(packet.type)
        if plugin is None:
            log.debug("no plugin for %s from %s; ignored", packet.type, device.id)
            return
        try:
            await plugin.handle(packet)
        except Exception:  # noqa: BLE001 - one bad packet must not end the link
            log.exception("plugin %s failed on %s from %s", plugin.info.name, packet.type, device.id)

    async def _send(self, device: Device, packet: Packet) -> None:
        link = device.link
        if link is None:
            raise DeviceError(f"{device.identity.name} is not reachable")
        try:
            await link.send(packet)
        except ConnectionError as exc:
            raise DeviceError(f"{device.identity.name}: link lost ({exc})") from None

    # -- pairing ----------------------------------------------------------------------------------

    async def _apply(self, device: Device, actions: list[Action]) -> None:
        if any(isinstance(a, StateChanged) and a.new is PairState.PAIRED for a in actions):
            # Route the phone's first packets (sent as soon as it sees our accept) to plugins.
            self._instantiate_plugins(device)
        for action in actions:
            if isinstance(action, SendPacket):
                if device.link is not None:
                    try:
                        await self._send(device, action.packet)
                    except DeviceError as exc:
                        log.info("%s", exc)
            elif isinstance(action, RequestRefused):
                log.warning("pair request from %s refused: %s", device.id, action.reason)
                self.bus.publish(Event("pair.refused", device.id, {"reason": action.reason}))
            elif isinstance(action, StateChanged):
                await self._pair_state_changed(device, action)
        self._changed(device)

    async def _pair_state_changed(self, device: Device, change: StateChanged) -> None:
        log.info("%s: %s -> %s (%s)", device.id, change.old.value, change.new.value, change.reason)
        new = change.new
        if new in (PairState.INCOMING, PairState.REQUESTED):
            device.verification_key = self._verification_key(device)
            self._arm_timeout(device)
            if new is PairState.INCOMING:
                await self.desktop.notify(
                    f"Pair request from \u201c{device.identity.name}\u201d",
                    f"Verification key: {device.verification_key}",
                )
        elif new is PairState.PAIRED:
            self._disarm_timeout(device)
            await self._remember(device, newly_paired=True)
            await self._start_plugins(device)
        elif new is PairState.UNPAIRED:
            self._disarm_timeout(device)
            if change.old is PairState.PAIRED:
                device.trusted = None
                await self._repo.delete(device.id)
                self._unload_plugins(device)
            device.verification_key = None
        self.bus.publish(Event("pair.changed", device.id, {
            "old": change.old.value, "new": new.value, "reason": change.reason,
            "verification_key": device.verification_key,
        }))

    def _verification_key(self, device: Device) -> str | None:
        cert = device.certificate
        if cert is None:
            return None
        return verification_key(self.certificate, cert, device.identity.protocol_version,
                                device.session.timestamp)

    def _arm_timeout(self, device: Device) -> None:
        self._disarm_timeout(device)
        deadline = device.session.deadline
        if deadline is None:
            return
        delay = max(0.0, deadline - self._clock()) + 0.01
        loop = asyncio.get_running_loop()
        self._timers[device.id] = loop.call_later(
            delay, lambda: self._spawn(self._tick(device))
        )

    def _disarm_timeout(self, device: Device) -> None:
        timer = self._timers.pop(device.id, None)
        if timer is not None:
            timer.cancel()

    async def _tick(self, device: Device) -> None:
        await self._apply(device, device.session.tick(self._clock()))

    async def _remember(self, device: Device, newly_paired: bool = False) -> None:
        cert = device.certificate
        assert cert is not None
        address = device.address
        previous = device.trusted
        device.trusted = TrustedDevice(
            id=device.id,
            name=device.identity.name,
            type=device.identity.device_type,
            protocol_version=device.identity.protocol_version,
            certificate=cert,
            last_host=address[0] if address else None,
            last_port=address[1] if address else None,
            paired_at=previous.paired_at if previous and not newly_paired else int(self._clock()),
        )
        await self._repo.save(device.trusted)

    # -- plugins ------------------------------------------------------------------------------

    async def _load_plugins(self, device: Device) -> None:
        self._instantiate_plugins(device)
        await self._start_plugins(device)

    def _instantiate_plugins(self, device: Device) -> None:
        self._unload_plugins(device)
        peer = device.identity
        for cls in self._plugin_classes:
            if not cls.info.enabled_by_default or not cls.info.supported_by(peer.incoming, peer.outgoing):
                continue
            ctx = PluginContext(
                device_id=device.id,
                device_name=lambda d=device: d.identity.name,
                peer_incoming=lambda d=device: d.identity.incoming,
                send_packet=lambda p, d=device: self._send(d, p),
                link=lambda d=device: d.link,
                services=self.services,
                bus=self.bus,
                desktop=self.desktop,
                state=device.state,
                on_state_change=lambda d=device: self._changed(d),
            )
            plugin = cls(ctx)
            device.plugins[cls.info.name] = plugin
            for packet_type in cls.info.incoming:
                device.router[packet_type] = plugin

    async def _start_plugins(self, device: Device) -> None:
        for plugin in list(device.plugins.values()):
            try:
                await plugin.on_connected()
            except DeviceError as exc:
                log.info("%s: %s", plugin.info.name, exc)
            except Exception:  # noqa: BLE001
                log.exception("plugin %s failed to start for %s", plugin.info.name, device.id)

    def _unload_plugins(self, device: Device) -> None:
        for plugin in device.plugins.values():
            plugin.close()
        device.plugins.clear()
        device.router.clear()

    def plugin(self, device_id: str, name: str) -> Plugin:
        device = self.get(device_id)
        if not device.is_paired:
            raise DeviceError(f"{device.identity.name} is not paired")
        if not device.is_reachable:
            raise DeviceError(f"{device.identity.name} is not reachable")
        plugin = device.plugins.get(name)
        if plugin is None:
            raise DeviceError(f"{device.identity.name} does not support {name}")
        return plugin

    # -- what the user does ---------------------------------------------------------------------

    async def pair(self, device_id: str) -> Device:
        """Accept the device's pending request, else send ours."""
        device = self.get(device_id)
        if device.is_paired:
            return device
        if not device.is_reachable:
            raise DeviceError(f"{device.identity.name} is not reachable")
        await self._apply(device, device.session.request(self._clock()))
        return device

    async def wait_for_pair_result(self, device_id: str, timeout: float) -> Device:
        """Wait until the device is paired or our request ended; returns the device."""
        device = self.get(device_id)
        with self.bus.subscribe() as sub:
            async with asyncio.timeout(timeout):
                while device.session.state is PairState.REQUESTED:
                    await sub.get()
        return device

    async def reject(self, device_id: str) -> Device:
        device = self.get(device_id)
        try:
            await self._apply(device, device.session.reject(self._clock()))
        except LocalProtocolError as exc:
            raise DeviceError(str(exc)) from None
        return device

    async def unpair(self, device_id: str) -> Device:
        device = self.get(device_id)
        if device.session.state is PairState.UNPAIRED and device.trusted is None:
            raise DeviceError(f"{device.identity.name} is not paired")
        await self._apply(device, device.session.unpair(self._clock()))
        if device.trusted is not None:  # e.g. a certificate-changed device: forget the pin
            device.trusted = None
            await self._repo.delete(device.id)
        device.certificate_changed = False
        device.refused_reason = None
        if not device.is_reachable:
            self.devices.pop(device.id, None)
            self.bus.publish(Event("device.removed", device.id, {}))
        self._changed(device)
        return device

    # -- reconnecting ---------------------------------------------------------------------------

    def _schedule_reconnect(self, device: Device) -> None:
        if device.id in self._reconnecting or self.dial is None or self._stopping:
            return
        self._reconnecting.add(device.id)
        self._spawn(self._reconnect(device))

    async def _reconnect(self, device: Device) -> None:
        try:
            attempt = 0
            while device.is_paired and not device.is_reachable and self.devices.get(device.id) is device:
                delay = RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)]
                await asyncio.sleep(delay)
                attempt += 1
                if device.is_reachable or not device.is_paired:
                    break
                address = device.address
                if address is None:
                    continue
                host, port = address
                if self.announce_to is not None:
                    self.announce_to(host)  # invites the peer to dial us (its fallback path)
                try:
                    assert self.dial is not None
                    await self.dial(host, port, device.identity)
                except Exception as exc:  # noqa: BLE001 - any failure: try again later
                    log.debug("reconnect to %s at %s:%d failed: %s", device.id, host, port, exc)
        finally:
            self._reconnecting.discard(device.id)
