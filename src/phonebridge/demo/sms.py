"""Texts and contacts, answered exactly as the Android app does (PROTOCOL.md §8.7, §8.9).

The phone holds a seeded history (`HistorySpec`, generated deterministically by `generate_history`):
1:1 SMS threads, group MMS threads with image attachments and thumbnails, emoji, right-to-left
scripts, very long messages, bursts of equal timestamps and one very long thread. It answers:

* `request_conversations`: the newest message of each thread, one `sms.messages` packet per thread
  (no end marker);
* `request_conversation`: SMS and MMS queried separately (MMS compares dates in seconds), each
  capped at N (at least 1), newest first with an inclusive `rangeStartTimestamp`, then merged by
  date in whole groups of equal date until there are at least N (`android_page`);
* `request_attachment`: the part as an `sms.attachment_file` payload;
* `sms.request`: the message appears as outbox (4), is pushed, then becomes sent (2) - or failed
  (5) for FAIL_NUMBER - and is pushed again;
* contacts: uids with timestamps, then vCards with X-KDECONNECT-ID-DEV and REV lines.

The size is configurable: `SmsFeature.history` (SMALL by default, so tests stay fast; the daemon's
--demo sets FULL). `generate_history` also makes the 100k and 1M histories of bench/messages.py.
Tests drive the phone with `receive` (a new incoming text), `add_offline` (texts that arrive
while the link is down) and the hostile switches `repeat_pages`, `mangle`, `drop_attachments`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonebridge.protocol import types
from phonebridge.protocol.packet import Packet, body_int
from phonebridge.transports.lan.payload import bytes_chunks

from .feature import Handler, PhoneFeature
from .notifications import png_icon

log = logging.getLogger(__name__)

FAIL_NUMBER = "+15550000000"
"""Texts to this number fail as a dead radio would (outbox 4, then failed 5)."""
SEND_DELAY = 0.05
"""Seconds between outbox and sent, as the radio takes its time."""
HISTORY_START = 1_640_995_200_000
"""2022-01-01 00:00 UTC: the seeded history spans the three years after it."""
SMS, MMS = "sms", "mms"
INBOX, SENT, OUTBOX, FAILED = 1, 2, 4, 5
EVENT_TEXT, EVENT_MULTI_TARGET = 0x1, 0x2


@dataclass(frozen=True)
class HistorySpec:
    threads: int = 200
    messages: int = 20_000
    big_thread: int = 5_000
    """Messages in the longest thread (thread 1)."""
    seed: int = 4
    contacts: int | None = None
    """Contacts on the phone (default: one per 1:1 thread and member, minus a few unknowns)."""


SMALL = HistorySpec(threads=12, messages=400, big_thread=120)
FULL = HistorySpec()


@dataclass
class Attachment:
    part_id: int
    mime_type: str
    unique_identifier: str
    thumbnail: str | None
    data: bytes = b""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"part_id": self.part_id, "mime_type": self.mime_type,
                               "unique_identifier": self.unique_identifier}
        if self.thumbnail is not None:
            out["encoded_thumbnail"] = self.thumbnail
        return out


@dataclass
class Message:
    kind: str
    id: int
    thread_id: int
    addresses: list[str]
    body: str
    date: int
    type: int
    read: int
    sub_id: int
    event: int
    attachments: list[Attachment] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The fields and types Android sends (SMSHelper Message.toJSONObject)."""
        out: dict[str, Any] = {
            "addresses": [{"address": a} for a in self.addresses], "body": self.body,
            "date": self.date, "type": self.type, "read": self.read, "thread_id": self.thread_id,
            "_id": self.id, "sub_id": self.sub_id, "event": self.event,
        }
        if self.kind == MMS:
            out["attachments"] = [a.to_json() for a in self.attachments]
        return out


@dataclass
class Person:
    uid: str
    name: str
    number: str
    vcard_number: str
    """The number as the address book writes it (another format than the SMS database's)."""
    timestamp: int
    photo: str | None = None


@dataclass
class History:
    threads: dict[int, list[Message]]
    people: list[Person]

    @property
    def messages(self) -> list[Message]:
        return [m for thread in self.threads.values() for m in thread]


# -- the seeded history -----------------------------------------------------------------------------

FIRST_NAMES = ["Alice", "José", "Zoë", "Chloé", "Søren", "Ana", "Björn", "Renée", "Łukasz", "Noah",
               "Mia", "Émile", "Ngozi", "Kenji", "Priya", "Omar", "Leila", "Dmitri", "Eleni", "Mei"]
LAST_NAMES = ["Martin", "Álvarez", "Müller", "Dubois", "Nørgaard", "García", "Öberg", "Lefèvre",
              "Wiśniewski", "Smith", "Rossi", "Côté", "Okafor", "Tanaka", "Sharma", "Haddad"]
OTHER_SCRIPT_NAMES = ["محمد الأحمد", "فاطمة الزهراء", "דוד כהן", "נועה לוי", "王芳", "李伟",
                      "Дмитрий Иванов", "Ελένη Παπαδοπούλου", "佐藤 花子", "김민준", "प्रिया शर्मा"]
PHRASES = [
    "See you at 8", "Running late, sorry!", "Did you get the tickets?", "Happy birthday 🎉🎂",
    "Call me when you can", "On my way 🚗", "Thanks!", "Lunch tomorrow?", "Ok 👍",
    "The meeting moved to Thursday", "Can you pick up milk?", "Where are you?", "Good night 🌙",
    "Café à 15h ?", "Ça marche, à demain", "Crème brûlée ce soir ?", "¿Dónde está la estación?",
    "Schöne Grüße aus München", "Naïve question: is the façade finished?", "Jalapeño nachos 🌶️",
    "مرحبا، كيف حالك؟", "أراك غدا إن شاء الله", "שלום, מה שלומך?", "נתראה מחר בבוקר",
    "你好，明天见", "晚饭吃什么？", "ありがとうございます", "Привет! Как дела?", "Καλημέρα σας",
    "नमस्ते, कैसे हो?", "안녕하세요", "สวัสดีครับ", "😂😂😂", "❤️", "🇫🇷🇯🇵🇧🇷", "👨‍👩‍👧‍👦 family dinner",
    "Tickets for the concert: row 12, seats 4–5", "Flight LH 1234 lands 18:45",
]
LONG_PARAGRAPH = ("This is a very long message, the kind people paste from an e-mail or write when "
                  "they have a lot to say about the trip, the weather, the schedule and the menu. ")


def _thumbnail_pool() -> list[tuple[str, bytes]]:
    colors = [(239, 68, 68), (34, 197, 94), (59, 130, 246), (234, 179, 8), (168, 85, 247)]
    return [(base64.b64encode(png_icon(c, 32)).decode(), png_icon(c, 160)) for c in colors]


def generate_history(spec: HistorySpec) -> History:
    """A deterministic history: same spec, same messages (ids, dates, texts), every time."""
    rnd = random.Random(spec.seed)
    thumbs = _thumbnail_pool()
    people: list[Person] = []
    used_numbers: set[str] = set()

    def new_person() -> Person:
        while True:
            local = f"{rnd.randrange(1_000_000, 9_999_999)}"
            number = f"+1555{local}"
            if number not in used_numbers and number != FAIL_NUMBER:
                used_numbers.add(number)
                break
        if rnd.random() < 0.2:
            name = rnd.choice(OTHER_SCRIPT_NAMES)
        else:
            name = f"{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}"
        vcard_number = f"(555) {local[:3]}-{local[3:]}" if rnd.random() < 0.5 else number
        person = Person(uid=str(len(people) + 1), name=name, number=number,
                        vcard_number=vcard_number,
                        timestamp=HISTORY_START - rnd.randrange(10**9),
                        photo=thumbs[len(people) % len(thumbs)][0] if rnd.random() < 0.3 else None)
        people.append(person)
        return person

    n_threads = max(1, spec.threads)
    thread_ids = sorted(rnd.sample(range(2, n_threads * 20 + 2), n_threads - 1))
    thread_ids = [1, *thread_ids]
    participants: dict[int, list[Person]] = {}
    for tid in thread_ids:
        group = tid != 1 and rnd.random() < 0.15
        participants[tid] = [new_person() for _ in range(rnd.randint(2, 5) if group else 1)]
    big = min(spec.big_thread, spec.messages - (n_threads - 1)) if n_threads > 1 else spec.messages
    big = max(big, 1)
    rest = spec.messages - big
    weights = [rnd.random() ** 2 + 0.05 for _ in thread_ids[1:]]
    total = sum(weights)
    counts = {1: big}
    left = rest
    for tid in thread_ids[1:]:
        counts[tid] = 1
        left -= 1
    for tid, w in zip(thread_ids[1:], weights, strict=True):
        extra = int(left * w / total) if total else 0
        counts[tid] += extra
    counts[thread_ids[-1] if n_threads > 1 else 1] += spec.messages - sum(counts.values())

    sms_ids = itertools.count(1)
    mms_ids = itertools.count(1)
    parts = itertools.count(100)
    span = 3 * 365 * 24 * 3600 * 1000
    threads: dict[int, list[Message]] = {}
    for tid in thread_ids:
        people_here = participants[tid]
        group = len(people_here) > 1
        n = counts[tid]
        date = HISTORY_START + rnd.randrange(span // 3)
        step = max(1000, (HISTORY_START + span - date) // max(n, 1))
        messages: list[Message] = []
        burst_left = 0
        burst_date = 0
        for i in range(n):
            if burst_left > 0:
                burst_left -= 1
                msg_date = burst_date
            else:
                date += rnd.randrange(1, 2 * step)
                msg_date = date
                if rnd.random() < 0.03 or (tid == 1 and i == n // 2):
                    # equal timestamps: a burst (in the big thread, more than one page's worth)
                    burst_left = 150 if tid == 1 and i == n // 2 else rnd.randint(1, 6)
                    burst_date = msg_date
            outgoing = rnd.random() < 0.45
            is_mms = group or rnd.random() < 0.06
            if is_mms:
                msg_date = msg_date // 1000 * 1000  # the MMS table keeps seconds
            roll = rnd.random()
            if roll < 0.004:
                body = (LONG_PARAGRAPH * rnd.randint(15, 90)).strip()
            elif roll < 0.02:
                body = ""
            else:
                body = " ".join(rnd.choice(PHRASES) for _ in range(rnd.randint(1, 3)))
            attachments = []
            if is_mms and (not body or rnd.random() < 0.35):
                for _ in range(rnd.randint(1, 2)):
                    thumb, full = thumbs[rnd.randrange(len(thumbs))]
                    part = next(parts)
                    attachments.append(Attachment(part, "image/png",
                                                  f"PART_{msg_date}_image{part:06d}.png", thumb, full))
            if outgoing:
                addresses = [p.number for p in people_here]
            else:
                sender = rnd.choice(people_here)
                addresses = [sender.number] + [p.number for p in people_here if p is not sender]
            event = (EVENT_TEXT if body else 0) | (EVENT_MULTI_TARGET if group else 0)
            messages.append(Message(
                kind=MMS if is_mms else SMS, id=next(mms_ids) if is_mms else next(sms_ids),
                thread_id=tid, addresses=addresses, body=body, date=msg_date,
                type=SENT if outgoing else INBOX, read=1, sub_id=rnd.choice((1, 2)), event=event,
                attachments=attachments,
            ))
        for m in messages[-rnd.randint(0, 3):]:
            if m.type == INBOX and rnd.random() < 0.5:
                m.read = 0
        threads[tid] = messages
    return History(threads=threads, people=people)


def generate_bulk(count: int, *, threads: int = 2000, seed: int = 1, chunk: int = 50_000):  # noqa: ANN201
    """`count` messages in chunks (lists of Message), for benchmarks of 1M messages and more:
    the same texts as the seeded history, without holding them all in memory."""
    rnd = random.Random(seed)
    numbers = [f"+1555{1_000_000 + i * 7:07d}" for i in range(threads)]
    date = HISTORY_START
    sms_ids = itertools.count(1)
    batch: list[Message] = []
    for _ in range(count):
        date += rnd.randrange(1, 90_000)
        tid = rnd.randrange(1, threads + 1)
        body = " ".join(rnd.choice(PHRASES) for _ in range(rnd.randint(1, 3)))
        batch.append(Message(SMS, next(sms_ids), tid, [numbers[tid - 1]], body, date,
                             SENT if rnd.random() < 0.45 else INBOX, 1, 1, EVENT_TEXT))
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch


# -- Android's paging --------------------------------------------------------------------------------

def _newest_first(messages: list[Message]) -> list[Message]:
    return sorted(messages, key=lambda m: (m.date, m.id), reverse=True)


def android_page(messages: list[Message], start: int | None, number: int | None) -> list[Message]:
    """SMSHelper.getMessagesInRange as Android runs it (PROTOCOL.md §8.7)."""
    sms = [m for m in messages if m.kind == SMS]
    mms = [m for m in messages if m.kind == MMS]
    if start is not None and start >= 0:
        sms = [m for m in sms if m.date <= start]
        mms = [m for m in mms if m.date // 1000 <= start // 1000]  # the MMS table is in seconds
    sms, mms = _newest_first(sms), _newest_first(mms)
    if number is None or number < 0:
        return _newest_first(sms + mms)
    cap = max(number, 1)
    merged = _newest_first(sms[:cap] + mms[:cap])
    page: list[Message] = []
    for _date, group in itertools.groupby(merged, key=lambda m: m.date):
        if len(page) >= cap:
            break
        page.extend(group)
    return page


# -- the feature --------------------------------------------------------------------------------------

class SmsFeature(PhoneFeature):
    history_spec: HistorySpec = SMALL

    def __init__(self, phone) -> None:  # noqa: ANN001
        super().__init__(phone)
        self._history: History | None = None
        self.sent_requests: list[dict[str, Any]] = []
        self.pages_answered = 0
        self.repeat_pages = False
        """Hostile: answer every page request with the previous answer again, then correctly."""
        self.mangle: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        """Hostile: rewrite each page's message list before it is sent."""
        self.drop_attachments = False
        """Hostile: never answer request_attachment."""
        self.close_after_pages: int | None = None
        """Drop the link after this many answered pages (a link lost in mid-sync)."""
        self._previous_page: list[dict[str, Any]] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._next_sms = 0
        self._next_mms = 0

    def use_history(self, spec: HistorySpec) -> None:
        self.history_spec = spec
        self._history = None

    @property
    def history(self) -> History:
        if self._history is None:
            self._history = generate_history(self.history_spec)
            all_messages = self._history.messages
            self._next_sms = max((m.id for m in all_messages if m.kind == SMS), default=0) + 1
            self._next_mms = max((m.id for m in all_messages if m.kind == MMS), default=0) + 1
        return self._history

    def handlers(self) -> dict[str, Handler]:
        return {
            types.SMS_REQUEST_CONVERSATIONS: self._on_conversations,
            types.SMS_REQUEST_CONVERSATION: self._on_conversation,
            types.SMS_REQUEST: self._on_send,
            types.SMS_REQUEST_ATTACHMENT: self._on_attachment,
            types.CONTACTS_REQUEST_ALL_UIDS_TIMESTAMPS: self._on_uids,
            types.CONTACTS_REQUEST_VCARDS_BY_UID: self._on_vcards,
        }

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_messages(self, messages: list[dict[str, Any]]) -> None:
        await self.phone.send(Packet(types.SMS_MESSAGES, {"version": 2, "messages": messages}))

    # -- conversations ------------------------------------------------------------------------

    async def _on_conversations(self, packet: Packet) -> None:
        newest = [max(msgs, key=lambda m: (m.date, m.id)) for msgs in self.history.threads.values() if msgs]
        for m in sorted(newest, key=lambda m: m.date, reverse=True):
            await self._send_messages([m.to_json()])

    async def _on_conversation(self, packet: Packet) -> None:
        thread = body_int(packet.body.get("threadID"))
        start = body_int(packet.body.get("rangeStartTimestamp"))
        number = body_int(packet.body.get("numberToRequest"))
        page = android_page(self.history.threads.get(thread, []) if thread is not None else [],
                            start, number)
        messages = [m.to_json() for m in page]
        if self.mangle is not None:
            messages = self.mangle(messages)
        if self.repeat_pages and self._previous_page is not None:
            repeated, self._previous_page = self._previous_page, None
            await self._send_messages(repeated)
        else:
            self._previous_page = messages
        await self._send_messages(messages)
        self.pages_answered += 1
        if self.close_after_pages is not None and self.pages_answered >= self.close_after_pages:
            self.close_after_pages = None
            if self.phone.link is not None:
                await self.phone.link.close("demo: link lost in mid-sync")

    # -- new messages -------------------------------------------------------------------------

    def _thread_for(self, addresses: list[str]) -> int:
        wanted = sorted(_digits(a) for a in addresses)
        for tid, msgs in self.history.threads.items():
            if msgs and sorted(_digits(a) for a in msgs[-1].addresses) == wanted:
                return tid
        tid = max(self.history.threads, default=0) + 1
        self.history.threads[tid] = []
        return tid

    def _add(self, addresses: list[str], body: str, mtype: int, *, mms: bool = False,
             attachments: list[Attachment] | None = None, sub_id: int = 1,
             date: int | None = None) -> Message:
        tid = self._thread_for(addresses)
        group = len(addresses) > 1
        mms = mms or group or bool(attachments)
        now = date if date is not None else int(time.time() * 1000)
        if mms:
            now = now // 1000 * 1000
            mid, self._next_mms = self._next_mms, self._next_mms + 1
        else:
            mid, self._next_sms = self._next_sms, self._next_sms + 1
        m = Message(kind=MMS if mms else SMS, id=mid, thread_id=tid, addresses=list(addresses),
                    body=body, date=now, type=mtype, read=1 if mtype != INBOX else 0, sub_id=sub_id,
                    event=(EVENT_TEXT if body else 0) | (EVENT_MULTI_TARGET if group else 0),
                    attachments=attachments or [])
        self.history.threads[tid].append(m)
        return m

    async def receive(self, sender: str, body: str, *, others: tuple[str, ...] = ()) -> Message:
        """A text arrives on the phone: stored and pushed to the desktop as Android does."""
        m = self._add([sender, *others], body, INBOX)
        await self._send_messages([m.to_json()])
        return m

    def add_offline(self, count: int, *, seed: int = 7) -> list[Message]:
        """Texts that arrive while the desktop is away (not pushed): the next sync fetches them."""
        rnd = random.Random(seed)
        threads = list(self.history.threads)
        newest = max((m.date for m in self.history.messages), default=HISTORY_START)
        added = []
        for i in range(count):
            tid = rnd.choice(threads)
            msgs = self.history.threads[tid]
            addresses = msgs[-1].addresses if msgs else ["+15551230000"]
            m = self._add(addresses, f"{rnd.choice(PHRASES)} #{i}", INBOX,
                          date=newest + 1000 * (i + 1))
            added.append(m)
        return added

    async def _on_send(self, packet: Packet) -> None:
        body = packet.body
        self.sent_requests.append(body)
        raw = body.get("addresses")
        if isinstance(raw, list):
            addresses = [a.get("address") for a in raw if isinstance(a, dict)]
        elif isinstance(body.get("phoneNumber"), str):  # the legacy form (GSConnect)
            addresses = [body["phoneNumber"]]
        else:
            addresses = []
        addresses = [a for a in addresses if isinstance(a, str) and a]
        text = body.get("messageBody") if isinstance(body.get("messageBody"), str) else ""
        files = body.get("attachments") if isinstance(body.get("attachments"), list) else []
        if not addresses or (not text and not files):
            log.info("demo phone: ignoring an sms.request without addresses or content")
            return
        attachments = []
        for f in files:
            if not isinstance(f, dict):
                continue
            try:
                data = base64.b64decode(f.get("base64EncodedFile", ""), validate=True)
            except ValueError:
                continue
            part = 90_000 + len(self.sent_requests) * 10 + len(attachments)
            attachments.append(Attachment(part, str(f.get("mimeType") or "application/octet-stream"),
                                          str(f.get("fileName") or f"part{part}"), None, data))
        sub_id = body_int(body.get("subID"), -1)
        m = self._add(addresses, text, OUTBOX, attachments=attachments,
                      sub_id=sub_id if sub_id is not None and sub_id >= 0 else 1)
        await self._send_messages([m.to_json()])
        self._spawn(self._deliver(m))

    async def _deliver(self, m: Message) -> None:
        await asyncio.sleep(SEND_DELAY)
        failed = any(_digits(a) == _digits(FAIL_NUMBER) for a in m.addresses)
        m.type = FAILED if failed else SENT
        with contextlib.suppress(ConnectionError, OSError):
            await self._send_messages([m.to_json()])

    # -- attachments ----------------------------------------------------------------------------

    async def _on_attachment(self, packet: Packet) -> None:
        part_id = body_int(packet.body.get("part_id"))
        unique = packet.body.get("unique_identifier")
        if self.drop_attachments:
            return
        found = next((a for m in self.history.messages for a in m.attachments
                      if a.part_id == part_id and a.unique_identifier == unique), None)
        link = self.phone.link
        if found is None or link is None:
            return
        reply = Packet(types.SMS_ATTACHMENT_FILE, {"filename": found.unique_identifier})

        async def offer() -> None:
            with contextlib.suppress(Exception):
                await link.offer_payload(reply, len(found.data), bytes_chunks(found.data))

        self._spawn(offer())

    # -- contacts ---------------------------------------------------------------------------------

    def _contacts(self) -> list[Person]:
        people = self.history.people
        limit = self.history_spec.contacts
        # A few numbers are not in the address book, as on a real phone.
        known = [p for p in people if int(p.uid) % 7 != 4]
        return known if limit is None else known[:limit]

    async def _on_uids(self, packet: Packet) -> None:
        contacts = self._contacts()
        body: dict[str, Any] = {"uids": [p.uid for p in contacts]}
        for p in contacts:
            body[p.uid] = p.timestamp
        await self.phone.send(Packet(types.CONTACTS_RESPONSE_UIDS_TIMESTAMPS, body))

    async def _on_vcards(self, packet: Packet) -> None:
        wanted = packet.body.get("uids")
        if not isinstance(wanted, list):
            return
        by_uid = {p.uid: p for p in self._contacts()}
        body: dict[str, Any] = {"uids": []}
        for uid in wanted:
            person = by_uid.get(uid) if isinstance(uid, str) else None
            if person is None:
                continue
            body["uids"].append(uid)
            body[uid] = self.vcard(person)
        await self.phone.send(Packet(types.CONTACTS_RESPONSE_VCARDS, body))

    def vcard(self, p: Person) -> str:
        lines = ["BEGIN:VCARD", "VERSION:2.1", f"FN:{p.name}", f"TEL;CELL:{p.vcard_number}"]
        if p.photo:
            lines.append(f"PHOTO;ENCODING=BASE64;PNG:{p.photo}")
        lines += [f"X-KDECONNECT-ID-DEV-{self.phone.device_id}:{p.uid}", f"REV:{p.timestamp}",
                  "END:VCARD"]
        return "\n".join(lines) + "\n"


def _digits(address: str) -> str:
    digits = "".join(ch for ch in address if ch.isdigit())
    return digits[-10:] if len(digits) >= 5 else address.casefold()
