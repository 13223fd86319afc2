"""Sharing, as the KDE Connect Android app does it (PROTOCOL.md §7, §8.5).

Receiving: a file is fetched into the phone's `Download` folder (Android saves shared files there)
under a temporary name and renamed when complete, one file at a time; a text goes to the phone's
clipboard (`texts`), a URL is kept in `urls` (the app opens it in the browser).
Sending (`send_files`): one packet and one *new* payload listener per file (Android's
CompositeUploadFileJob), each packet carrying `numberOfFiles`, `totalPayloadSize` and
`lastModified`; an empty file goes without payload fields. `send_text` and `send_url` send
`{"text"}` and `{"url"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import replace
from pathlib import Path

from phonebridge.plugins.share import FileShare, TextShare, UrlShare, parse_share, place, read_file
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet

from .feature import Handler, PhoneFeature

log = logging.getLogger(__name__)


class ShareFeature(PhoneFeature):
    def __init__(self, phone) -> None:  # noqa: ANN001
        super().__init__(phone)
        self.download_dir: Path = phone.home / "Download"
        self.files: list[Path] = []
        """Files received complete, in order."""
        self.failed: list[tuple[str, str]] = []
        """(name, reason) of files that did not arrive."""
        self.texts: list[str] = []
        self.urls: list[str] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    def handlers(self) -> dict[str, Handler]:
        return {types.SHARE_REQUEST: self._on_share}

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_share(self, packet: Packet) -> None:
        share = parse_share(packet)
        if isinstance(share, FileShare):
            task = asyncio.get_running_loop().create_task(self._receive(packet, share))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(share, TextShare):
            self.texts.append(share.text)
        elif isinstance(share, UrlShare):
            self.urls.append(share.url)
        self.phone.changed.set()

    async def _receive(self, packet: Packet, share: FileShare) -> None:
        async with self._lock:  # one file after the other, like the app
            link = self.phone.link
            self.download_dir.mkdir(parents=True, exist_ok=True)
            part = self.download_dir / f".{share.name}.{os.getpid()}.part"
            try:
                with open(part, "wb") as fh:
                    if packet.has_payload:
                        if link is None:
                            raise ConnectionError("not linked")
                        await link.fetch_payload(packet, fh.write)
                    elif packet.empty_payload_port is not None and link is not None:
                        # Android connects whenever a port is given, even for 0 bytes
                        empty = replace(packet, payload_size=0,
                                        payload_transfer_info={"port": packet.empty_payload_port})
                        with contextlib.suppress(OSError, ConnectionError):
                            await link.fetch_payload(empty, fh.write)
                final = await asyncio.to_thread(place, part, self.download_dir, share.name)
            except (OSError, ConnectionError) as exc:
                with contextlib.suppress(OSError):
                    part.unlink()
                self.failed.append((share.name, str(exc)))
                log.info("demo phone could not receive %s: %s", share.name, exc)
            else:
                if share.last_modified is not None:
                    with contextlib.suppress(OSError, ValueError, OverflowError):
                        os.utime(final, (final.stat().st_atime, share.last_modified / 1000))
                self.files.append(final)
            self.phone.changed.set()

    async def send_files(self, paths: list[Path]) -> int:
        """Share files with the desktop as the app does; returns the bytes sent."""
        link = self.phone.link
        if link is None:
            raise ConnectionError("the demo phone is not linked")
        files = [(Path(p), Path(p).stat()) for p in paths]
        total = sum(st.st_size for _, st in files)
        sent = 0
        for path, st in files:
            body = {
                "filename": path.name,
                "lastModified": int(st.st_mtime * 1000),
                "numberOfFiles": len(files),
                "totalPayloadSize": total,
            }
            packet = Packet(types.SHARE_REQUEST, body)  # empty: payloadSize 0 with a port
            sent += await link.offer_payload(packet, st.st_size, read_file(path, st.st_size))
        return sent

    async def send_text(self, text: str) -> bool:
        return await self.phone.send(Packet(types.SHARE_REQUEST, {"text": text}))

    async def send_url(self, url: str) -> bool:
        return await self.phone.send(Packet(types.SHARE_REQUEST, {"url": url}))
