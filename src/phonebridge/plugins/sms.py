"""Texts (PROTOCOL.md §8.7): the complete history, live updates, attachments and sending.

The phone is the server; we behave toward it as KDE's desktop does:

* On link: `request_conversations` (the newest message of each thread, one packet per thread, no
  end marker), then each thread is paged back with `request_conversation` (rangeStartTimestamp,
  numberToRequest) until it is complete. Android answers a page with the newest messages dated
  <= the start (inclusive), SMS and MMS capped at N separately and merged in whole groups of equal
  date, so a page may repeat messages: we store by (kind, _id), ask from the oldest date seen with
  N above the number of known messages at that date, and call a thread complete only when a page
  from its oldest date brings nothing unseen.
* The end of the conversation list is found with a fence: right after `request_conversations` we
  ask for a thread that does not exist (FENCE_THREAD); its empty answer comes after every list
  packet, as the phone answers in order. A phone that never answers it is waited out (LIST_QUIET).
* Replies carry no request id, so requests are answered in order (a FIFO of at most PIPELINE
  outstanding pages). A packet that cannot be the answer to the oldest request (another thread,
  or dates after the requested start) is a live push: stored, never mistaken for a page.
* On reconnect only what is new is asked: threads whose newest message we already have are left
  alone; others are paged from the top down to what we had; incomplete threads resume from
  their oldest message. Thread completeness is stored, so a link lost in mid-sync resumes.
* Bad input (missing or wrongly typed fields, unknown `type`, drafts) is logged and skipped per
  message; the rest of the packet is used. Nothing is ever deleted because the phone omitted it.
* Sending: `sms.request` version 2. The message is stored as local/pending at once, and replaced by
  the phone's own copy when it pushes it back (outbox 4, then sent 2 or failed 5). A message the
  phone never reports within SEND_TIMEOUT is marked failed: never lost silently.
* Attachments: thumbnails come with the messages; the file is fetched on demand
  (`request_attachment` -> `attachment_file` payload) and cached under HOME/sms-attachments.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonebridge.core.plugin import Plugin, PluginInfo
from phonebridge.errors import DeviceError
from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int

log = logging.getLogger(__name__)

SMS, MMS = "sms", "mms"
MESSAGE_TYPES = {1, 2, 4, 5, 6}
"""Android MESSAGE_TYPE_*: 1 inbox, 2 sent, 4 outbox, 5 failed, 6 queued (3 draft is skipped)."""
DRAFT = 3
MAX_DATE = 2 ** 50
FENCE_THREAD = -1
"""A thread id Android never uses: its (empty) answer marks the end of the conversation list."""

PAGE_MIN = 250
"""Smallest numberToRequest (KDE asks for at least 25; larger pages mean fewer round trips)."""
PAGE_MAX = 2000
"""Largest numberToRequest unless more known messages share the boundary date."""
PIPELINE = 8
"""Page requests outstanding at once (each for another thread)."""
PAGE_TIMEOUT = 20.0
"""Seconds to wait for one page before leaving its thread incomplete for the next sync."""
LIST_QUIET = 3.0
"""Seconds without a list packet after which the list is taken as complete (no fence answer)."""
LIST_TIMEOUT = 60.0
SEND_TIMEOUT = 60.0
"""Seconds until a sent message the phone has not reported is marked failed."""
ATTACHMENT_TIMEOUT = 30.0
MAX_ATTACHMENT = 64 * 1024 * 1024
RECHECK_ROUNDS = 5
"""Times a sync pages again threads found incomplete while it ran."""
PROGRESS_EVERY = 0.5
"""Seconds between two sync.progress events."""


# -- parsing -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SmsAttachment:
    part_id: int
    mime_type: str
    unique_identifier: str
    thumbnail: str | None


@dataclass(frozen=True, slots=True)
class PhoneMessage:
    kind: str
    phone_id: int
    thread_id: int
    date: int
    body: str
    addresses: tuple[str, ...]
    type: int
    read: bool
    sub_id: int
    event: int
    attachments: tuple[SmsAttachment, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.phone_id)


class BadMessage(ValueError):
    """A message that cannot be used; `key`/`date` are set when those fields were readable."""

    def __init__(self, reason: str, key: tuple[str, int] | None = None, date: int | None = None,
                 thread_id: int | None = None) -> None:
        super().__init__(reason)
        self.key = key
        self.date = date
        self.thread_id = thread_id


def _strict_int(value: Any) -> int | None:
    """Integers as Android sends them (numbers; decimal text tolerated), never bools."""
    return value if type(value) is int else body_int(value)


def parse_attachment(raw: Any) -> SmsAttachment | None:
    if not isinstance(raw, dict):
        return None
    part_id = _strict_int(raw.get("part_id"))
    mime = raw.get("mime_type")
    unique = raw.get("unique_identifier")
    if part_id is None or not isinstance(mime, str) or not isinstance(unique, str):
        return None
    thumb = raw.get("encoded_thumbnail")
    if thumb is not None:
        try:
            base64.b64decode(thumb, validate=True)
        except (binascii.Error, ValueError, TypeError):
            thumb = None
    return SmsAttachment(part_id, mime[:200], unique[:500], thumb)


def parse_message(raw: Any) -> PhoneMessage:
    """One element of `sms.messages` -> PhoneMessage; raises BadMessage with the reason."""
    if not isinstance(raw, dict):
        raise BadMessage(f"not an object: {type(raw).__name__}")
    kind = MMS if "attachments" in raw else SMS
    phone_id = _strict_int(raw.get("_id"))
    if phone_id is None or phone_id < 0:
        raise BadMessage(f"bad _id {raw.get('_id')!r}")
    key = (kind, phone_id)
    thread_id = _strict_int(raw.get("thread_id"))
    date = _strict_int(raw.get("date"))
    if date is None or not 0 <= date < MAX_DATE:
        raise BadMessage(f"bad date {raw.get('date')!r}", key)
    if thread_id is None or thread_id < 0:
        raise BadMessage(f"bad thread_id {raw.get('thread_id')!r}", key, date)
    mtype = _strict_int(raw.get("type"))
    if mtype == DRAFT:
        raise BadMessage("a draft", key, date, thread_id)
    if mtype not in MESSAGE_TYPES:
        raise BadMessage(f"unknown type {raw.get('type')!r}", key, date, thread_id)
    body = raw.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise BadMessage(f"body is {type(body).__name__}", key, date, thread_id)
    addresses_raw = raw.get("addresses", [])
    if not isinstance(addresses_raw, list):
        raise BadMessage("addresses is not a list", key, date, thread_id)
    addresses = []
    for entry in addresses_raw:
        address = entry.get("address") if isinstance(entry, dict) else None
        if isinstance(address, str) and address.strip():
            addresses.append(address.strip()[:200])
    read_raw = raw.get("read", 1)
    read = read_raw is True or (not isinstance(read_raw, bool) and _strict_int(read_raw) not in (0, None))
    sub_id = _strict_int(raw.get("sub_id"))
    event = _strict_int(raw.get("event"))
    attachments_raw = raw.get("attachments")
    attachments = tuple(a for a in (parse_attachment(x) for x in attachments_raw) if a is not None) \
        if isinstance(attachments_raw, list) else ()
    return PhoneMessage(
        kind=kind, phone_id=phone_id, thread_id=thread_id, date=date, body=body,
        addresses=tuple(addresses), type=mtype, read=read,
        sub_id=sub_id if sub_id is not None else -1,
        event=event if event is not None and event >= 0 else (1 if body else 0),
        attachments=attachments,
    )


@dataclass
class Page:
    messages: list[PhoneMessage]
    bad: list[BadMessage]
    raw_count: int


def parse_page(raw_messages: list[Any]) -> Page:
    good, bad = [], []
    for raw in raw_messages:
        try:
            good.append(parse_message(raw))
        except BadMessage as exc:
            bad.append(exc)
    return Page(good, bad, len(raw_messages))


def _within(m: PhoneMessage, start: int) -> bool:
    """Whether Android could answer `m` for rangeStartTimestamp `start` (MMS compare seconds)."""
    return m.date // 1000 <= start // 1000 if m.kind == MMS else m.date <= start


@dataclass
class _Request:
    thread_id: int
    start: int | None
    future: asyncio.Future = field(repr=False)

    def answered_by(self, page: Page) -> bool:
        if page.raw_count == 0:
            return True
        if not page.messages:  # nothing usable: a page of garbage, but never the fence's answer
            return self.thread_id != FENCE_THREAD
        if any(m.thread_id != self.thread_id for m in page.messages):
            return False
        if self.start is not None and any(not _within(m, self.start) for m in page.messages):
            return False
        return True


class SyncAborted(Exception):
    pass


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class SmsPlugin(Plugin):
    info = PluginInfo(
        name="sms",
        incoming=frozenset({types.SMS_MESSAGES, types.SMS_ATTACHMENT_FILE}),
        outgoing=frozenset({types.SMS_REQUEST, types.SMS_REQUEST_CONVERSATIONS,
                            types.SMS_REQUEST_CONVERSATION, types.SMS_REQUEST_ATTACHMENT}),
        description="Read and send the phone's text messages",
    )

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self.repo = ctx.services.messages
        self._pending: collections.deque[_Request] = collections.deque()
        self._send_lock = asyncio.Lock()
        self._sync_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._listing = False
        self._last_list_packet = 0.0
        self._listed: dict[int, bool] = {}
        self._list_buffer: list[PhoneMessage] = []
        """Threads in the conversation list -> whether their newest message was new to us."""
        self._skipped: set[tuple[str, int]] = set()
        self._recheck: set[int] = set()
        """Threads to page again before the sync ends (see handle)."""
        self._attachment_waiters: dict[str, asyncio.Future] = {}
        self._send_waiters: dict[int, asyncio.Future] = {}
        self._phone_to_local: dict[tuple[str, int], int] = {}
        self.sync_state = "idle"
        self._last_progress = 0.0
        self.pages_requested = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def on_connected(self) -> None:
        if self.repo is None:
            return
        self.start_sync()

    def start_sync(self) -> bool:
        """Start a sync unless one runs; returns whether one was started."""
        if self._sync_task is not None and not self._sync_task.done():
            return False
        self._sync_task = asyncio.get_running_loop().create_task(self._run_sync())
        return True

    def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for request in self._pending:
            if not request.future.done():
                request.future.cancel()
        self._pending.clear()
        for fut in [*self._attachment_waiters.values(), *self._send_waiters.values()]:
            if not fut.done():
                fut.set_exception(DeviceError("the link to the phone was lost"))

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- packets -------------------------------------------------------------------------------------

    async def handle(self, packet: Packet) -> None:
        if packet.type == types.SMS_ATTACHMENT_FILE:
            name = packet.body.get("filename")
            waiter = self._attachment_waiters.get(name) if isinstance(name, str) else None
            if waiter is None or waiter.done():
                self.log.info("%s: unrequested attachment_file %r ignored", self.ctx.device_id, name)
                return
            waiter.set_result(packet)
            return
        if self.repo is None:  # a context without the store (plugin-level tests): nothing to keep
            return
        raw = packet.body.get("messages")
        if not isinstance(raw, list):
            self.log.warning("%s: sms.messages without a messages list; ignored", self.ctx.device_id)
            return
        page = parse_page(raw)
        for bad in page.bad:
            self.log.info("%s: skipping a message (%s)", self.ctx.device_id, bad)
        if self._pending and self._pending[0].answered_by(page):
            request = self._pending.popleft()
            if not request.future.done():
                request.future.set_result(page)
            return
        if self._pending and page.messages and page.messages[0].thread_id == self._pending[0].thread_id:
            self.log.info("%s: a packet for thread %d outside the requested range: taken as a push",
                          self.ctx.device_id, self._pending[0].thread_id)
        if self._listing:  # a conversation list packet: stored with the others in one go
            self._last_list_packet = time.monotonic()
            self._list_buffer.extend(page.messages)
            return
        # A live push (new or changed messages).
        result = await self._store(page.messages)
        # New messages older than what the thread had: a page went missing (a phone that answered
        # out of turn). The thread is incomplete again and gets paged once more.
        stale = {m.thread_id for m in page.messages if m.key in result.new
                 and m.date < result.newest_before.get(m.thread_id, -1)}
        for thread_id in stale:
            self.log.info("%s: thread %d got older messages unasked; paging it again",
                          self.ctx.device_id, thread_id)
            await self.repo.set_complete(self.ctx.device_id, thread_id, False)
            self._recheck.add(thread_id)
        if stale:
            self.start_sync()  # when one runs, it pages these threads before it ends

    async def _store(self, messages: list[PhoneMessage]):  # noqa: ANN202
        result = await self.repo.apply(self.ctx.device_id, messages)
        for key, local_id in result.replaced.items():
            self._phone_to_local[key] = local_id
        for m in messages:
            local_id = self._phone_to_local.get(m.key)
            if local_id is None:
                continue
            status = {2: "sent", 5: "failed"}.get(m.type)
            waiter = self._send_waiters.get(local_id)
            if status and waiter is not None and not waiter.done():
                waiter.set_result((status, m))
        if result.new or result.changed or result.replaced:
            self.ctx.publish("messages.changed", threads=sorted(result.threads),
                             new=len(result.new), changed=len(result.changed))
        return result

    # -- sync -------------------------------------------------------------------------------------------

    async def _request(self, thread_id: int, start: int | None, number: int) -> Page | None:
        """One page; None when it did not come within PAGE_TIMEOUT."""
        future = asyncio.get_running_loop().create_future()
        request = _Request(thread_id, start, future)
        body: dict[str, Any] = {"threadID": thread_id, "numberToRequest": number}
        if start is not None:
            body["rangeStartTimestamp"] = start
        async with self._send_lock:
            self._pending.append(request)
            try:
                sent = await self.ctx.send(Packet(types.SMS_REQUEST_CONVERSATION, body))
            except DeviceError as exc:
                raise SyncAborted(str(exc)) from None
            if not sent:
                self._pending.remove(request)
                raise SyncAborted("the phone does not accept request_conversation")
        self.pages_requested += 1
        try:
            return await asyncio.wait_for(future, PAGE_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                self._pending.remove(request)
            self.log.warning("%s: no answer for thread %d within %.0f s; it stays incomplete",
                             self.ctx.device_id, thread_id, PAGE_TIMEOUT)
            return None

    async def _list_conversations(self) -> None:
        self._listing = True
        self._listed = {}
        self._last_list_packet = time.monotonic()
        try:
            if not await self.ctx.send(Packet(types.SMS_REQUEST_CONVERSATIONS, {})):
                raise SyncAborted("the phone does not accept request_conversations")
            fence = asyncio.get_running_loop().create_task(self._request(FENCE_THREAD, None, 1))
            deadline = time.monotonic() + LIST_TIMEOUT
            while not fence.done():
                await asyncio.wait({fence}, timeout=0.2)
                quiet = time.monotonic() - self._last_list_packet
                if not fence.done() and (quiet > LIST_QUIET or time.monotonic() > deadline):
                    fence.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fence
                    self._pending.clear()
                    self.log.info("%s: no fence answer; the conversation list is taken as complete",
                                  self.ctx.device_id)
                    break
            if fence.done() and not fence.cancelled():
                fence.result()
        finally:
            self._listing = False
            listed, self._list_buffer = self._list_buffer, []
        result = await self._store(listed)
        for m in listed:
            self._listed[m.thread_id] = self._listed.get(m.thread_id, False) or m.key in result.new

    async def _run_sync(self) -> None:
        try:
            await self._sync()
        except SyncAborted as exc:
            self.log.info("%s: sync stopped: %s", self.ctx.device_id, exc)
            await self._report("incomplete", force=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bug must not end the link
            self.log.exception("%s: sync failed", self.ctx.device_id)
            await self._report("incomplete", force=True)

    async def _sync(self) -> None:
        await self.repo.fail_stale_local(self.ctx.device_id, int((time.time() - SEND_TIMEOUT) * 1000))
        await self._report("syncing", force=True)
        before = await self.repo.thread_states(self.ctx.device_id)
        await self._list_conversations()
        jobs = []
        for thread_id in sorted(set(before) | set(self._listed)):
            state = before.get(thread_id)
            has_new_top = self._listed.get(thread_id, False)
            if state is not None and state.complete and not has_new_top:
                continue
            jobs.append((thread_id, state, has_new_top))
        limit = asyncio.Semaphore(PIPELINE)

        async def run(job: tuple) -> bool:
            async with limit:
                return await self._sync_thread(*job)

        async def run_backfill(thread_id: int, state) -> bool:  # noqa: ANN001
            async with limit:
                if state is None:
                    return await self._backfill(thread_id, None, 0)
                return await self._backfill(thread_id, state.oldest, state.count)

        results = list(await asyncio.gather(*(run(j) for j in jobs)))
        for _round in range(RECHECK_ROUNDS):
            if not self._recheck:
                break
            again, self._recheck = sorted(self._recheck), set()
            states = await self.repo.thread_states(self.ctx.device_id)
            results += await asyncio.gather(*(run_backfill(t, states.get(t)) for t in again))
        await self._report("synced" if all(results) and not self._recheck else "incomplete",
                           force=True)

    async def _sync_thread(self, thread_id: int, state, has_new_top: bool) -> bool:  # noqa: ANN001
        """Bring one thread up to date; True when it ends complete."""
        if state is None:
            return await self._backfill(thread_id, None, 0)
        if has_new_top and state.newest is not None:
            if not await self._fill(thread_id, None, state.newest):
                return False
        if state.complete:
            return True
        states = await self.repo.thread_states(self.ctx.device_id)
        now = states.get(thread_id, state)
        return await self._backfill(thread_id, now.oldest, now.count)

    async def _backfill(self, thread_id: int, start: int | None, known: int) -> bool:
        if not await self._fill(thread_id, start, None, known):
            return False
        if thread_id in self._recheck:  # older messages came unasked meanwhile: not complete
            return True
        await self.repo.set_complete(self.ctx.device_id, thread_id)
        await self._report("syncing")
        return True

    async def _fill(self, thread_id: int, start: int | None, floor: int | None, known: int = 0) -> bool:
        """Page down from `start` (None: the newest) until a page brings nothing unseen, or (with
        `floor`) until the pages reach below it. False if a page did not come."""
        while True:
            at_boundary = 0
            if start is not None:
                at_boundary = await self.repo.count_near(self.ctx.device_id, thread_id, start)
            number = max(PAGE_MIN, min(max(known, PAGE_MIN), PAGE_MAX), at_boundary + PAGE_MIN)
            page = await self._request(thread_id, start, number)
            if page is None:
                return False
            result = await self._store(page.messages)
            unseen = len(result.new)
            for bad in page.bad:
                if bad.key is not None and bad.date is not None and bad.key not in self._skipped:
                    self._skipped.add(bad.key)
                    unseen += 1
            dates = [m.date for m in page.messages] + [b.date for b in page.bad if b.date is not None]
            if page.raw_count == 0 or unseen == 0 or not dates:
                return True
            if page.raw_count < number and floor is None:
                # Android fills a page to N from either table: fewer than N means both tables had
                # nothing more dated <= start, so the thread is complete without asking again.
                return True
            known += len(result.new)
            oldest = min(dates)
            if floor is not None and oldest < floor:
                return True
            start = oldest
            await self._report("syncing")

    async def _report(self, state: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        self.sync_state = state
        counts = await self.repo.counts(self.ctx.device_id)
        info = {"state": state, **counts}
        self.ctx.set_state("sms_sync", info)
        self.ctx.publish("sync.progress", **info)

    async def sync_status(self) -> dict[str, Any]:
        counts = await self.repo.counts(self.ctx.device_id)
        return {"state": self.sync_state, **counts}

    # -- sending ------------------------------------------------------------------------------------------

    async def send_message(self, addresses: list[str], body: str,
                           attachments: list[tuple[str, str, bytes]] | None = None,
                           sub_id: int | None = None, timeout: float = SEND_TIMEOUT) -> dict[str, Any]:
        """Send a text (one or several recipients); waits until the phone reports it sent or failed.

        Returns {"status": "sent"|"failed", "message": local message JSON, "thread_id"}; raises
        DeviceError when the phone cannot take it or does not report it within `timeout` (the
        message is then shown as failed).
        """
        addresses = [a.strip() for a in addresses if a.strip()]
        attachments = attachments or []
        if not addresses:
            raise DeviceError("no recipient")
        if not body and not attachments:
            raise DeviceError("nothing to send")
        local = await self.repo.add_local(self.ctx.device_id, addresses, body,
                                          [(name, mime) for name, mime, _ in attachments],
                                          sub_id if sub_id is not None else -1)
        waiter = asyncio.get_running_loop().create_future()
        self._send_waiters[local["id"]] = waiter
        self.ctx.publish("messages.changed", threads=[local["thread_id"]] if local["thread_id"] else [],
                         new=1, changed=0)
        packet_body: dict[str, Any] = {"version": 2, "addresses": [{"address": a} for a in addresses],
                                       "messageBody": body}
        if sub_id is not None and sub_id >= 0:
            packet_body["subID"] = sub_id
        if attachments:
            packet_body["attachments"] = [
                {"fileName": name, "base64EncodedFile": base64.b64encode(data).decode(), "mimeType": mime}
                for name, mime, data in attachments]
        try:
            try:
                sent = await self.ctx.send(Packet(types.SMS_REQUEST, packet_body))
            except DeviceError:
                sent = False
            if not sent:
                await self.repo.fail_local(self.ctx.device_id, local["id"])
                raise DeviceError("the phone did not take the message")
            try:
                status, message = await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                await self.repo.fail_local(self.ctx.device_id, local["id"])
                self.ctx.publish("messages.changed", threads=[], new=0, changed=1)
                raise DeviceError(f"the phone did not report the message within {timeout:.0f} s") from None
        finally:
            self._send_waiters.pop(local["id"], None)
        return {"status": status, "thread_id": message.thread_id, "message": local | {"status": status}}

    # -- attachments --------------------------------------------------------------------------------------

    def _attachment_dir(self) -> Path:
        home = self.ctx.services.home or Path(".")
        return Path(home) / "sms-attachments" / _SAFE_NAME.sub("_", self.ctx.device_id)

    async def attachment_file(self, message_id: int, part_id: int) -> tuple[Path, str]:
        """The attachment's file (fetched from the phone the first time); (path, mime type)."""
        info = await self.repo.attachment(self.ctx.device_id, message_id, part_id)
        if info is None:
            raise DeviceError("no such attachment")
        unique = info["unique_identifier"]
        name = _SAFE_NAME.sub("_", f"{message_id}-{part_id}-{unique}")[:200]
        path = self._attachment_dir() / name
        if path.exists():
            return path, info["mime_type"]
        waiter = self._attachment_waiters.get(unique)
        if waiter is None or waiter.done():
            waiter = asyncio.get_running_loop().create_future()
            self._attachment_waiters[unique] = waiter
        try:
            sent = await self.ctx.send(Packet(types.SMS_REQUEST_ATTACHMENT,
                                              {"part_id": part_id, "unique_identifier": unique}))
            if not sent:
                raise DeviceError("the phone does not send attachments")
            try:
                packet = await asyncio.wait_for(asyncio.shield(waiter), ATTACHMENT_TIMEOUT)
            except TimeoutError:
                raise DeviceError(f"the phone did not send the attachment within "
                                  f"{ATTACHMENT_TIMEOUT:.0f} s") from None
        finally:
            if self._attachment_waiters.get(unique) is waiter and waiter.done():
                self._attachment_waiters.pop(unique, None)
        if packet.payload_size is None or packet.payload_size > MAX_ATTACHMENT:
            raise DeviceError("the phone sent no usable attachment")
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(ATTACHMENT_TIMEOUT):
                await self.ctx.fetch_payload(packet, chunks.append)
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise DeviceError(f"the attachment did not arrive: {exc or type(exc).__name__}") from None
        data = b"".join(chunks)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)
        return path, info["mime_type"]
