"""PhoneFiles: the phone's storage as a desktop program needs it, over one SFTP session.

Rules:
1. Paths are the phone's absolute POSIX paths (Android 11+ serves real paths such as
   `/storage/emulated/0/DCIM`); `roots` are its storage volumes.
2. Symbolic links are shown resolved (a link to a folder is a folder); a dangling or looping link is
   a file of size 0 that cannot be opened. `walk` follows links but never visits a folder twice
   (it tracks real paths) and never goes deeper than `max_depth`, so it always ends.
3. Every operation survives one lost session: it asks the phone again (a restarted server has a new
   port and password), reconnects and retries once; a second loss raises
   PhoneFileError(path, "connection lost"). Sessions are shared: a loss seen by many callers
   causes one reconnection.
4. Downloads land whole or not at all: data goes to `.ID.phonebridge-part` in the target folder
   and is renamed (names made safe, " (1)" on a clash) only when complete, with the phone's
   modification time. Files go one after another; a session lost in mid-file restarts that file
   once, then fails it (files before it are kept).
   Uploads are written as `.ID.phonebridge-part` on the phone, get the file's mtime and are renamed
   without overwriting (" (1)" on a clash). Both run in the background as transfers.
5. Reads are pipelined (many large requests in flight), so a file comes at about link speed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import posixpath
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
from asyncssh import sftp as sftp_errors
from asyncssh.constants import FILEXFER_TYPE_DIRECTORY, FILEXFER_TYPE_SYMLINK

from phonebridge.core.transfers import CANCELLED, DONE, FAILED, Transfer, TransferManager
from phonebridge.errors import DeviceError

log = logging.getLogger(__name__)

T = TypeVar("T")

PART_SUFFIX = ".phonebridge-part"
READ_BLOCK = 256 * 1024
"""Bytes per read request when the server does not state its limit (see _read_ahead)."""
MAX_READ_BLOCK = 1024 * 1024
READ_REQUESTS = 32
"""Read requests in flight per file: enough to fill a fast link, bounded memory (32 blocks)."""
WRITE_BLOCK = 64 * 1024
"""Bytes per write request when the server does not state its limit: below every server's packet
limit (MINA, OpenSSH: 256 KiB)."""
MAX_WRITE_BLOCK = 1024 * 1024
WRITE_REQUESTS = 32
STAT_PARALLEL = 16
PULL_PARALLEL = 4
"""Files downloaded at once: a photo is a few round trips (stat, open, reads, close) of ~100 KB to
a few MB, so one at a time leaves the link idle between files."""
MAX_DEPTH = 8

LOST_ERRORS: tuple[type[BaseException], ...] = (
    sftp_errors.SFTPConnectionLost,
    sftp_errors.SFTPNoConnection,
    asyncssh.DisconnectError,  # ConnectionLost is one
    asyncssh.ChannelOpenError,
    ConnectionError,
    EOFError,
    asyncio.IncompleteReadError,
)
"""What a dead session raises (the SFTP layer, the SSH layer, the socket)."""

CONNECTION_LOST = "connection lost"


@dataclass(frozen=True)
class PhoneEntry:
    name: str
    path: str
    size: int
    """Bytes; 0 for a folder."""
    is_dir: bool
    date: int | None
    """Modification time, milliseconds since the epoch."""

    def to_json(self) -> dict[str, Any]:
        """The JSON of `phonebridge files --json` and the API: add, never rename."""
        return {"name": self.name, "path": self.path, "size": self.size, "is_dir": self.is_dir,
                "date": self.date}


@dataclass(frozen=True)
class StorageRoot:
    path: str
    name: str
    """What the phone calls it ("Internal shared storage", "SD card")."""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name}


class PhoneFileError(DeviceError):
    """An operation on one phone path failed; `reason` is short and stable ("not found",
    "permission denied", "not a folder", "is a folder", "connection lost", ...)."""

    def __init__(self, path: str, reason: str, detail: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class SftpSession:
    """One logged-in SSH connection and its SFTP client (made by the sftp plugin)."""

    conn: Any
    """asyncssh.SSHClientConnection"""
    sftp: Any
    """asyncssh.SFTPClient"""
    roots: list[StorageRoot]
    lost: asyncio.Event
    """Set when the SSH connection ended."""

    @property
    def closed(self) -> bool:
        return self.lost.is_set()

    def close(self) -> None:
        self.lost.set()
        with contextlib.suppress(Exception):
            self.sftp.exit()
        with contextlib.suppress(Exception):
            self.conn.close()


def _reason(exc: asyncssh.SFTPError) -> str:
    if isinstance(exc, (sftp_errors.SFTPNoSuchFile, sftp_errors.SFTPNoSuchPath)):
        return "not found"
    if isinstance(exc, sftp_errors.SFTPPermissionDenied):
        return "permission denied"
    if isinstance(exc, sftp_errors.SFTPNotADirectory):
        return "not a folder"
    if isinstance(exc, sftp_errors.SFTPFileIsADirectory):
        return "is a folder"
    if isinstance(exc, sftp_errors.SFTPLinkLoop):
        return "symbolic link loop"
    if isinstance(exc, sftp_errors.SFTPNoSpaceOnFilesystem):
        return "the phone's storage is full"
    text = str(exc.reason or "").strip()
    return text.lower() if text else "failed"


def _file_error(path: str, exc: asyncssh.SFTPError) -> PhoneFileError:
    return PhoneFileError(path, _reason(exc))


def _date(attrs: Any) -> int | None:
    if attrs.mtime_ns is not None:
        return attrs.mtime_ns // 1_000_000
    if attrs.mtime is not None:
        return int(attrs.mtime) * 1000
    return None


def _is_dir(attrs: Any) -> bool:
    return attrs.type == FILEXFER_TYPE_DIRECTORY  # SFTP 3: asyncssh derives it from the mode


def _is_link(attrs: Any) -> bool:
    return attrs.type == FILEXFER_TYPE_SYMLINK


def _entry(path: str, name: str, attrs: Any) -> PhoneEntry:
    is_dir = _is_dir(attrs)
    size = 0 if is_dir or attrs.size is None else int(attrs.size)
    return PhoneEntry(name=name, path=path, size=size, is_dir=is_dir, date=_date(attrs))


def phone_path(path: str) -> str:
    """A normalised absolute phone path; DeviceError for anything else."""
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise DeviceError(f"not an absolute phone path: {path!r}")
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")


def _name_of(path: str) -> str:
    return posixpath.basename(path) or path


def _sort_key(entry: PhoneEntry) -> tuple[bool, str, str]:
    return (not entry.is_dir, entry.name.casefold(), entry.name)


def _local_error(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


class PhoneFiles:
    """The phone's files; made by plugins/sftp.py (`SftpPlugin.files()`), one per linked device."""

    def __init__(self, connect: Callable[[], Awaitable[SftpSession]], *,
                 transfers: TransferManager | None = None, device_id: str = "",
                 device_name: Callable[[], str] = lambda: "phone") -> None:
        self._connect = connect
        self._transfers = transfers
        self.device_id = device_id
        self._device_name = device_name
        self._session_now: SftpSession | None = None
        self._connecting: asyncio.Task[SftpSession] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed: str | None = None
        self._walks = 0
        self.roots: list[StorageRoot] = []
        self.walk_errors: list[PhoneFileError] = []
        """Folders the last walk (or overlapping walks) could not read, with the reason."""
        self.reconnects = 0
        """Sessions opened after the first (for tests and logs)."""

    # -- the session ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Make sure a session is up; raises DeviceError with the reason when it cannot be."""
        await self._session()

    @property
    def connected(self) -> bool:
        return self._session_now is not None and not self._session_now.closed

    def close(self, reason: str = "closed") -> None:
        """End the session and every transfer still running (the link went away)."""
        if self._closed is None:
            self._closed = reason
        if self._connecting is not None:
            self._connecting.cancel()
        if self._session_now is not None:
            self._session_now.close()
            self._session_now = None
        for task in list(self._tasks):
            task.cancel()

    async def _session(self) -> SftpSession:
        if self._closed is not None:
            raise DeviceError(f"{self._device_name()} is not connected ({self._closed})")
        session = self._session_now
        if session is not None and not session.closed:
            return session
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._open())
            self._connecting.add_done_callback(_retrieve)
        try:
            return await asyncio.shield(self._connecting)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed is not None and current is not None and not current.cancelling():
                raise DeviceError(f"{self._device_name()} is not connected ({self._closed})") \
                    from None
            raise

    async def _open(self) -> SftpSession:
        old = self._session_now
        session = await self._connect()
        if self._closed is not None:
            session.close()
            raise DeviceError(f"{self._device_name()} is not connected ({self._closed})")
        if old is not None or self.roots:
            self.reconnects += 1
        self._session_now = session
        self.roots = list(session.roots)
        return session

    async def _session_for(self, path: str) -> SftpSession:
        """The session, or PhoneFileError(path, "connection lost") when none can be had."""
        try:
            return await self._session()
        except DeviceError as exc:
            raise PhoneFileError(path, CONNECTION_LOST, str(exc)) from None

    def _lost(self, session: SftpSession) -> None:
        if self._session_now is session:
            self._session_now = None
        session.close()

    async def _call(self, path: str, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run `op(sftp)`; on a lost session reconnect and run it once more."""
        for attempt in (0, 1):
            session = await self._session_for(path)
            try:
                return await op(session.sftp)
            except LOST_ERRORS as exc:
                self._lost(session)
                if attempt:
                    raise PhoneFileError(path, CONNECTION_LOST, str(exc) or None) from None
                log.info("%s: SFTP session lost (%s); reconnecting", self.device_id, exc)
            except asyncssh.SFTPError as exc:
                raise _file_error(path, exc) from None
        raise AssertionError("unreachable")

    # -- browsing -------------------------------------------------------------------------------

    async def list_dir(self, path: str) -> list[PhoneEntry]:
        """The folder's entries, folders first, then by name (links resolved)."""
        return [entry for entry, _ in await self._list(phone_path(path))]

    async def _list(self, path: str) -> list[tuple[PhoneEntry, bool]]:
        """Entries with whether each was a symbolic link."""

        async def op(sftp: Any) -> list[tuple[PhoneEntry, bool]]:
            names = []
            async for name in sftp.scandir(path):
                if name.filename in (".", ".."):
                    continue
                names.append(name)
            links = [n for n in names if _is_link(n.attrs)]
            resolved = await _gather_limited(
                [self._follow(sftp, posixpath.join(path, n.filename)) for n in links],
                STAT_PARALLEL)
            targets = {n.filename: attrs for n, attrs in zip(links, resolved, strict=True)}
            out = []
            for n in names:
                full = posixpath.join(path, n.filename)
                attrs = targets.get(n.filename, n.attrs)
                if attrs is None:  # dangling or looping link: listed, cannot be opened
                    out.append((PhoneEntry(n.filename, full, 0, False, _date(n.attrs)), True))
                else:
                    out.append((_entry(full, n.filename, attrs), n.filename in targets))
            out.sort(key=lambda pair: _sort_key(pair[0]))
            return out

        return await self._call(path, op)

    @staticmethod
    async def _follow(sftp: Any, path: str) -> Any:
        try:
            return await sftp.stat(path)
        except asyncssh.SFTPError as exc:
            if isinstance(exc, LOST_ERRORS):
                raise
            return None

    async def stat(self, path: str) -> PhoneEntry:
        """One entry (links followed)."""
        path = phone_path(path)
        attrs = await self._call(path, lambda sftp: sftp.stat(path))
        return _entry(path, _name_of(path), attrs)

    async def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        """The whole file, or `size` bytes from `offset` (fewer at the end of the file)."""
        path = phone_path(path)
        if offset < 0 or (size is not None and size < 0):
            raise DeviceError("offset and size must not be negative")
        if size == 0:
            return b""

        async def op(sftp: Any) -> bytes:
            async with await sftp.open(path, "rb", block_size=0) as remote:
                if size is None:
                    end = (await remote.stat()).size or 0
                else:
                    end = offset + size
                async with contextlib.aclosing(_read_ahead(sftp, remote, offset, end)) as blocks:
                    return b"".join([block async for block in blocks])

        return await self._call(path, op)

    async def stream(self, path: str, offset: int = 0, size: int | None = None,
                     ) -> AsyncIterator[bytes]:
        """The file (or `size` bytes from `offset`) in order, in blocks, read ahead.

        A session lost in mid-stream is resumed where it stopped (once), so a consumer such as an
        HTTP response never sees a gap. Close it (`contextlib.aclosing`) when stopping early.
        """
        path = phone_path(path)
        position = offset
        end = None if size is None else offset + size
        for attempt in (0, 1):
            session = await self._session_for(path)
            try:
                async with await session.sftp.open(path, "rb", block_size=0) as remote:
                    if end is None:
                        end = (await remote.stat()).size or 0
                    async with contextlib.aclosing(
                            _read_ahead(session.sftp, remote, position, end)) as blocks:
                        async for block in blocks:
                            position += len(block)
                            yield block
                return
            except LOST_ERRORS as exc:
                self._lost(session)
                if attempt:
                    raise PhoneFileError(path, CONNECTION_LOST, str(exc) or None) from None
            except asyncssh.SFTPError as exc:
                raise _file_error(path, exc) from None

    async def walk(self, top: str, *, max_depth: int = MAX_DEPTH, skip_hidden: bool = False,
                   errors: list[PhoneFileError] | None = None) -> AsyncIterator[PhoneEntry]:
        """Every file below `top` (folders are not yielded), each folder's files in name order.

        Links are followed, but a folder is visited once (by real path) and at most `max_depth`
        levels down. A folder that cannot be read (permission denied, vanished, a broken link) is
        skipped and recorded in `walk_errors` (and in `errors` if given); a lost session that
        cannot be re-established raises PhoneFileError(..., "connection lost").
        """
        top = phone_path(top)
        if self._walks == 0:
            self.walk_errors = []
        self._walks += 1
        try:
            try:
                real_top = await self._call(top, lambda sftp: sftp.realpath(top))
            except PhoneFileError as exc:
                if exc.reason == CONNECTION_LOST:
                    raise
                self._record(exc, errors)
                return
            visited: set[str] = set()
            stack: list[tuple[str, str, int]] = [(top, real_top, 0)]
            while stack:
                folder, real, depth = stack.pop()
                if real in visited:
                    continue
                visited.add(real)
                try:
                    entries = await self._list(folder)
                except PhoneFileError as exc:
                    if exc.reason == CONNECTION_LOST:
                        raise
                    self._record(exc, errors)
                    continue
                below: list[tuple[str, str, int]] = []
                for entry, was_link in entries:
                    if skip_hidden and entry.name.startswith("."):
                        continue
                    if not entry.is_dir:
                        yield entry
                    elif depth < max_depth:
                        if was_link:
                            try:
                                target = await self._call(
                                    entry.path, lambda sftp, p=entry.path: sftp.realpath(p))
                            except PhoneFileError as exc:
                                if exc.reason == CONNECTION_LOST:
                                    raise
                                self._record(exc, errors)
                                continue
                        else:
                            target = posixpath.join(real, entry.name)
                        if target not in visited:
                            below.append((entry.path, target, depth + 1))
                stack.extend(reversed(below))
        finally:
            self._walks -= 1

    def _record(self, error: PhoneFileError, errors: list[PhoneFileError] | None) -> None:
        log.info("%s: walk skipped %s", self.device_id, error)
        self.walk_errors.append(error)
        if errors is not None:
            errors.append(error)

    # -- transfers ------------------------------------------------------------------------------

    def _manager(self) -> TransferManager:
        if self._transfers is None:
            raise DeviceError("transfers are not available")
        return self._transfers

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def pull(self, paths: list[str], to_dir: Path) -> list[Transfer]:
        """Download phone files into `to_dir`; returns their transfers at once (direction "in").

        Raises DeviceError when a path is not an absolute phone path or the folder cannot be made.
        Each transfer's `path` is the final local file (numbered on a clash) once it is done.
        """
        from phonebridge.plugins.share import safe_filename  # the plugin layer owns file naming

        manager = self._manager()
        if not paths:
            raise DeviceError("no files to pull")
        wanted = [phone_path(p) for p in paths]
        folder = Path(to_dir).expanduser()
        try:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise DeviceError(f"cannot write to {folder}: {_local_error(exc)}") from None
        folder = folder.resolve()
        batch: list[tuple[str, Transfer]] = []
        for path in wanted:
            name = safe_filename(_name_of(path), "phone-file")
            transfer = manager.create(
                device=self.device_id, device_name=self._device_name(), direction="in",
                kind="file", name=name, size=0, path=str(folder / name),
            )
            manager.set_canceller(transfer, lambda: None)  # before its turn: only marked
            batch.append((path, transfer))
        self._spawn(self._pull_batch(batch, folder))
        return [t for _, t in batch]

    async def _pull_batch(self, batch: list[tuple[str, Transfer]], folder: Path) -> None:
        """A few files at once (PULL_PARALLEL). A lost session ends every file in flight, whichever
        caused it, so those files are not failed then: once the batch is through they are pulled
        again one after another, where a lost session costs only the file in flight (restarted
        once). Names are clash-checked as each file lands."""
        manager = self._manager()
        lost: list[tuple[str, Transfer]] = []
        try:
            await self._size_up(batch)
            await self._in_turn(batch, lambda path, t: self._pull_file(path, t, folder, lost),
                                PULL_PARALLEL)
            if lost:
                order = {id(t): i for i, (_, t) in enumerate(batch)}
                lost.sort(key=lambda item: order[id(item[1])])
                await self._in_turn(lost, lambda path, t: self._pull_file(path, t, folder))
        finally:
            for _, transfer in batch:
                _failed_pull(manager, transfer, FAILED, self._closed or "stopped")

    async def _in_turn(self, batch: list[tuple[T, Transfer]],
                       copy: Callable[[T, Transfer], Coroutine[Any, Any, None]],
                       parallel: int = 1) -> None:
        """`copy` the files in order, at most `parallel` at once, skipping those cancelled
        meanwhile. Cancelling one file ends only that file; cancelling the batch cancels the files
        in flight too."""
        manager = self._manager()
        slots = asyncio.Semaphore(parallel)
        running: set[asyncio.Task] = set()

        def done(task: asyncio.Task) -> None:
            running.discard(task)
            slots.release()

        try:
            for item, transfer in batch:
                await slots.acquire()
                if not transfer.is_active:
                    slots.release()
                    continue
                task = self._spawn(copy(item, transfer))
                manager.set_canceller(transfer, task.cancel)
                running.add(task)
                task.add_done_callback(done)
            while running:
                await asyncio.wait(set(running))
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            raise

    async def _size_up(self, batch: list[tuple[str, Transfer]]) -> None:
        """Fill in the sizes (a quick stat of every file) so progress has a total at once."""
        manager = self._manager()

        async def one(path: str, transfer: Transfer) -> None:
            with contextlib.suppress(DeviceError):
                entry = await self.stat(path)
                if not entry.is_dir and transfer.is_active:
                    transfer.size = entry.size
                    manager.progress(transfer, 0)

        await _gather_limited([one(p, t) for p, t in batch], STAT_PARALLEL)

    async def _pull_file(self, path: str, transfer: Transfer, folder: Path,
                         lost: list[tuple[str, Transfer]] | None = None) -> None:
        """Download one file; with `lost`, a lost session puts it there instead of failing it."""
        from phonebridge.plugins.share import place

        manager = self._manager()
        part = folder / f".{transfer.id}{PART_SUFFIX}"
        try:
            await self._download(path, transfer, part)  # a lost session restarts it once
            final = await asyncio.to_thread(place, part, folder, transfer.name)
            transfer.name = final.name
            manager.finish(transfer, DONE, path=str(final))
        except asyncio.CancelledError:
            if self._closed is not None:
                _failed_pull(manager, transfer, FAILED, self._closed)
            else:
                _failed_pull(manager, transfer, CANCELLED, "cancelled by the user")
            raise
        except PhoneFileError as exc:
            if lost is not None and exc.reason == CONNECTION_LOST and transfer.is_active:
                lost.append((path, transfer))
            else:
                _failed_pull(manager, transfer, FAILED, exc.reason)
        except DeviceError as exc:
            _failed_pull(manager, transfer, FAILED, str(exc))
        except OSError as exc:
            _failed_pull(manager, transfer, FAILED, f"cannot write the file: {_local_error(exc)}")
        finally:
            if transfer.state != DONE:
                with contextlib.suppress(OSError):
                    part.unlink()
                log.info("%s: pulling %s ended %s: %s", self.device_id, path, transfer.state,
                         transfer.error or "to be tried again")

    async def _download(self, path: str, transfer: Transfer, part: Path) -> None:
        """The whole file into `part` with the phone's mtime; a lost session starts it again once
        (raises PhoneFileError)."""
        manager = self._manager()

        async def op(sftp: Any) -> None:
            attrs = await sftp.stat(path)
            if _is_dir(attrs):
                raise PhoneFileError(path, "is a folder")
            size = attrs.size or 0
            transfer.size = size
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
            fd = await asyncio.to_thread(os.open, part, flags, 0o644)
            try:
                done = 0
                manager.progress(transfer, 0)
                if size:
                    async with await sftp.open(path, "rb", block_size=0) as remote, \
                            contextlib.aclosing(_read_ahead(sftp, remote, 0, size)) as blocks:
                        async for block in blocks:
                            await asyncio.to_thread(_write_at, fd, block, done)
                            done += len(block)
                            manager.progress(transfer, done)
                if done != size:
                    raise PhoneFileError(path, "the file changed on the phone while it was read")
            finally:
                await asyncio.to_thread(os.close, fd)
            date = _date(attrs)
            if date is not None:
                with contextlib.suppress(OSError, OverflowError, ValueError):
                    os.utime(part, (time.time(), date / 1000))

        await self._call(path, op)

    async def push(self, files: list[Path], to_dir: str) -> list[Transfer]:
        """Upload local files into the phone folder `to_dir`; returns their transfers at once.

        Raises DeviceError when a file is not a readable regular file, PhoneFileError when
        `to_dir` is not a folder on the phone.
        """
        from phonebridge.plugins.share import readable_files

        manager = self._manager()
        if not files:
            raise DeviceError("no files to push")
        folder = phone_path(to_dir)
        local = await readable_files(files, "push")
        target = await self.stat(folder)
        if not target.is_dir:
            raise PhoneFileError(folder, "not a folder")
        batch = []
        for path, size in local:
            transfer = manager.create(
                device=self.device_id, device_name=self._device_name(), direction="out",
                kind="file", name=path.name, size=size, path=posixpath.join(folder, path.name),
            )
            manager.set_canceller(transfer, lambda: None)
            batch.append((path, transfer))
        self._spawn(self._push_batch(batch, folder))
        return [t for _, t in batch]

    async def _push_batch(self, batch: list[tuple[Path, Transfer]], folder: str) -> None:
        manager = self._manager()
        try:
            await self._in_turn(batch, lambda path, t: self._push_file(path, t, folder))
        finally:
            for _, transfer in batch:
                manager.finish(transfer, FAILED, self._closed or "stopped")

    async def _push_file(self, path: Path, transfer: Transfer, folder: str) -> None:
        manager = self._manager()
        part = posixpath.join(folder, f".{transfer.id}{PART_SUFFIX}")
        try:
            st = await asyncio.to_thread(path.stat)

            async def op(sftp: Any) -> str:
                from phonebridge.plugins.share import read_file

                manager.progress(transfer, 0)
                async with await sftp.open(part, "wb", block_size=0) as remote:
                    async with contextlib.aclosing(read_file(path, transfer.size)) as chunks:
                        done = await _write_behind(
                            sftp, remote, chunks, lambda n: manager.progress(transfer, n))
                if done != transfer.size:
                    raise DeviceError(f"{path} changed while it was sent")
                with contextlib.suppress(asyncssh.SFTPError):
                    await sftp.utime(part, (int(time.time()), int(st.st_mtime)))
                return await _place_remote(sftp, part, folder, path.name)

            final = await self._call(part, op)
            transfer.path = final
            transfer.name = posixpath.basename(final)
            manager.finish(transfer, DONE)
        except asyncio.CancelledError:
            if self._closed is not None:
                manager.finish(transfer, FAILED, self._closed)
            else:
                manager.finish(transfer, CANCELLED, "cancelled by the user")
            raise
        except PhoneFileError as exc:
            manager.finish(transfer, FAILED, exc.reason)
        except DeviceError as exc:
            manager.finish(transfer, FAILED, str(exc))
        except OSError as exc:
            manager.finish(transfer, FAILED, f"cannot read the file: {_local_error(exc)}")
        finally:
            if transfer.state != DONE:
                self._spawn(self._remove_quietly(part))
                log.info("%s: pushing %s ended %s: %s", self.device_id, path, transfer.state,
                         transfer.error)

    async def _remove_quietly(self, path: str) -> None:
        """Best effort: a failed upload leaves no part file when the session is still up."""
        session = self._session_now
        if session is None or session.closed:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.sftp.remove(path), 10)


def _failed_pull(manager: TransferManager, transfer: Transfer, state: str, reason: str) -> None:
    """End a download that did not land: it has no local path (the planned name may be taken)."""
    if transfer.is_active:
        transfer.path = None
        manager.finish(transfer, state, reason)


async def _place_remote(sftp: Any, part: str, folder: str, name: str) -> str:
    """Rename the finished upload to `name` in `folder`, " (1)"... on a clash, never overwriting.

    SFTP's plain rename refuses an existing target (servers that follow the draft: OpenSSH,
    MINA, asyncssh), so a file that appears meanwhile is not replaced either.
    """
    from phonebridge.plugins.share import numbered

    for n in range(10_000):
        candidate = posixpath.join(folder, numbered(name, n))
        if await sftp.exists(candidate) or await sftp.islink(candidate):
            continue
        try:
            await sftp.rename(part, candidate)
        except asyncssh.SFTPError as exc:
            if isinstance(exc, LOST_ERRORS) or not await sftp.exists(candidate):
                raise
            continue
        return candidate
    raise PhoneFileError(posixpath.join(folder, name), "no free name")


async def _read_ahead(sftp: Any, remote: Any, offset: int, end: int) -> AsyncIterator[bytes]:
    """The bytes of `remote` from `offset` to `end`, in order, with READ_REQUESTS reads in flight.

    `remote` is opened with block_size=0, so each read is one SFTP request. A server answers at
    most its own limit per request (MINA: 63 KiB); after a short answer before the end, the block
    size shrinks to what the server gave and the rest is asked for in such blocks. Stops early at
    the end of the file.
    Every request still in flight is cancelled and awaited on the way out, whatever the reason.
    """
    limit = sftp.limits.max_read_len
    block = min(limit, MAX_READ_BLOCK) if limit > sftp_errors.SAFE_SFTP_READ_LEN else READ_BLOCK
    pending: collections.deque[tuple[int, int, asyncio.Task[bytes]]] = collections.deque()
    ahead = offset

    def ask(at: int, size: int) -> asyncio.Task[bytes]:
        return asyncio.ensure_future(remote.read(size, at))

    try:
        while pending or ahead < end:
            while ahead < end and len(pending) < READ_REQUESTS:
                size = min(block, end - ahead)
                pending.append((ahead, size, ask(ahead, size)))
                ahead += size
            at, size, task = pending.popleft()
            data = await task
            if not data:
                return  # end of file: the file is shorter than it was
            yield data
            if len(data) < size:  # the server's limit: ask for the rest in blocks of that size
                block = max(len(data), sftp_errors.SAFE_SFTP_READ_LEN)
                rest, left, again = at + len(data), size - len(data), []
                while left > 0:
                    piece = min(block, left)
                    again.append((rest, piece, ask(rest, piece)))
                    rest, left = rest + piece, left - piece
                pending.extendleft(reversed(again))
    finally:
        for _, _, task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*(task for _, _, task in pending), return_exceptions=True)


async def _write_behind(sftp: Any, remote: Any, chunks: AsyncIterator[bytes],
                        progress: Callable[[int], None]) -> int:
    """Write `chunks` to `remote` (opened with block_size=0) from offset 0, WRITE_REQUESTS
    requests in flight, each of the server's stated limit or WRITE_BLOCK; returns the bytes
    written. Requests in flight are cancelled and awaited on the way out, whatever the reason."""
    limit = sftp.limits.max_write_len
    block = min(limit, MAX_WRITE_BLOCK) if limit > sftp_errors.SAFE_SFTP_WRITE_LEN else WRITE_BLOCK
    pending: collections.deque[tuple[int, asyncio.Task]] = collections.deque()
    offset = done = 0
    try:
        async for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), block):
                piece = bytes(view[start:start + block])
                while len(pending) >= WRITE_REQUESTS:
                    size, task = pending.popleft()
                    await task
                    done += size
                    progress(done)
                pending.append((len(piece), asyncio.ensure_future(remote.write(piece, offset))))
                offset += len(piece)
        while pending:
            size, task = pending.popleft()
            await task
            done += size
            progress(done)
        return done
    finally:
        for _, task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*(task for _, task in pending), return_exceptions=True)


async def _gather_limited(coros: list[Awaitable[T]], limit: int) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def run(coro: Awaitable[T]) -> T:
        async with semaphore:
            return await coro

    return list(await asyncio.gather(*(run(c) for c in coros)))


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()
