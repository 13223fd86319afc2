"""The OS clipboard (text), behind desktop/base.py's Clipboard interface.

Backends, chosen at runtime by `system_clipboard()`:
  Windows   the Win32 clipboard API through ctypes (CF_UNICODETEXT)
  macOS     pbpaste / pbcopy
  Wayland   wl-paste / wl-copy (package wl-clipboard), when WAYLAND_DISPLAY is set
  X11       xclip, else xsel, when DISPLAY is set
  otherwise an in-memory clipboard (headless servers, CI), logged once.

Rules:
1. `watch` polls every POLL_INTERVAL seconds; the first read is a baseline, not a change, and text
   we put there ourselves (`set_text`) is never reported (so text from the phone is not echoed).
2. `changed_at` is the time (ms since the epoch) the clipboard last changed as far as we know,
   0 if it has not since we started: the `timestamp` of `kdeconnect.clipboard.connect` (§8.4).
3. A backend that fails at runtime (display gone, tool killed) degrades to the in-memory value and
   logs once; a clipboard failure never raises into a packet handler.
4. `watch` returns a function that stops the watching (plugins are per device and come and go).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
"""Seconds between clipboard reads while watching (no OS offers one portable change signal)."""
COMMAND_TIMEOUT = 2.0
"""Seconds a clipboard tool may take before we give up on that read or write."""
MAX_TEXT = 10 * 1024 * 1024
"""Clipboard text larger than this (bytes) is not read: KDE Connect packets are single lines."""


def now_ms() -> int:
    return int(time.time() * 1000)


class PollingClipboard:
    """What every backend shares: watchers, the poller task, the echo guard and the fallback."""

    name = "memory"

    def __init__(self, interval: float = POLL_INTERVAL) -> None:
        self.interval = interval
        self.changed_at = 0
        self._memory: str | None = None
        self._last: str | None = None  # last text seen or set: the poller reports only other text
        self._baseline = False
        self._watchers: list[Callable[[str], None]] = []
        self._task: asyncio.Task | None = None
        self._failed = False
        self._lock = asyncio.Lock()

    # -- what a backend implements ------------------------------------------------------------

    async def _read(self) -> str | None:
        return self._memory

    async def _write(self, text: str) -> None:
        self._memory = text

    # -- the Clipboard interface ------------------------------------------------------------------

    async def get_text(self) -> str | None:
        async with self._lock:
            return await self._get()

    async def _get(self) -> str | None:
        if self._failed:
            return self._memory
        try:
            return await self._read()
        except Exception as exc:  # noqa: BLE001 - see rule 3
            self._fail(exc)
            return self._memory

    async def set_text(self, text: str) -> None:
        # Under the lock: a poll must not read the old text after we set `_last` to the new one.
        async with self._lock:
            self._last = text
            self._memory = text
            self.changed_at = now_ms()
            if self._failed:
                return
            try:
                await self._write(text)
            except Exception as exc:  # noqa: BLE001 - see rule 3
                self._fail(exc)

    def watch(self, on_change: Callable[[str], None]) -> Callable[[], None]:
        self._watchers.append(on_change)
        self._ensure_poller()

        def unwatch() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.remove(on_change)
            if not self._watchers and self._task is not None:
                self._task.cancel()
                self._task = None

        return unwatch

    def user_copies(self, text: str) -> None:
        """The in-memory clipboard's equivalent of the user copying (tests, headless)."""
        self._memory = text
        self._notify(text)

    # -- polling -------------------------------------------------------------------------------

    def _ensure_poller(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the next watch() from inside the daemon starts it
        self._task = loop.create_task(self._poll(), name=f"clipboard-poll-{self.name}")

    async def _poll(self) -> None:
        while True:
            async with self._lock:
                text = await self._get()
                if not self._baseline:
                    self._baseline = True
                    if self._last is None:
                        self._last = text
                elif text is not None and text != self._last:
                    self._notify(text)
            await asyncio.sleep(self.interval)

    def _notify(self, text: str) -> None:
        self._last = text
        self.changed_at = now_ms()
        for watcher in list(self._watchers):
            try:
                watcher(text)
            except Exception:  # noqa: BLE001 - one bad watcher must not stop the others
                log.exception("clipboard watcher failed")

    def _fail(self, exc: BaseException) -> None:
        if not self._failed:
            log.warning("the %s clipboard failed (%s); using an in-memory clipboard from now on",
                        self.name, exc or type(exc).__name__)
        self._failed = True

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class MemoryClipboard(PollingClipboard):
    """No OS clipboard here: text lives in this process only."""


class CommandClipboard(PollingClipboard):
    """A clipboard driven by two command-line tools (pbpaste/pbcopy, wl-paste/wl-copy, xclip, xsel)."""

    def __init__(self, name: str, read: list[str], write: list[str],
                 env: dict[str, str] | None = None, interval: float = POLL_INTERVAL) -> None:
        super().__init__(interval)
        self.name = name
        self._read_cmd = read
        self._write_cmd = write
        self._env = {**os.environ, **env} if env else None

    async def _read(self) -> str | None:
        proc = await asyncio.create_subprocess_exec(
            *self._read_cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=self._env,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return None
        # An empty or non-text clipboard makes these tools exit non-zero: that is "no text".
        if proc.returncode != 0 or len(out) > MAX_TEXT:
            return None
        return out.decode("utf-8", errors="replace")

    async def _write(self, text: str) -> None:
        # xclip and wl-copy fork a child that serves the selection and keeps no pipe of ours:
        # stdout/stderr go to DEVNULL or communicate() would wait for that child.
        proc = await asyncio.create_subprocess_exec(
            *self._write_cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=self._env,
        )
        try:
            await asyncio.wait_for(proc.communicate(text.encode("utf-8")), COMMAND_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise OSError(f"{self._write_cmd[0]} did not finish") from None
        if proc.returncode != 0:
            raise OSError(f"{self._write_cmd[0]} exited with {proc.returncode}")


class WindowsClipboard(PollingClipboard):
    """The Win32 clipboard through ctypes; calls run in a worker thread (OpenClipboard can block)."""

    name = "windows"
    CF_UNICODETEXT = 13
    GMEM_MOVEABLE = 0x0002
    OPEN_ATTEMPTS = 10
    """OpenClipboard fails while another program holds the clipboard: retry a little."""

    def __init__(self, interval: float = POLL_INTERVAL) -> None:
        super().__init__(interval)
        import ctypes
        from ctypes import wintypes

        self._ctypes = ctypes
        user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        user32.OpenClipboard.argtypes = [wintypes.HWND]
        user32.OpenClipboard.restype = wintypes.BOOL
        user32.CloseClipboard.restype = wintypes.BOOL
        user32.EmptyClipboard.restype = wintypes.BOOL
        user32.GetClipboardData.argtypes = [wintypes.UINT]
        user32.GetClipboardData.restype = wintypes.HANDLE
        user32.SetClipboardData.argtypes = [wintypes.UINT, wintypes.HANDLE]
        user32.SetClipboardData.restype = wintypes.HANDLE
        user32.IsClipboardFormatAvailable.argtypes = [wintypes.UINT]
        user32.IsClipboardFormatAvailable.restype = wintypes.BOOL
        user32.GetClipboardSequenceNumber.restype = wintypes.DWORD
        kernel32.GlobalAlloc.argtypes = [wintypes.UINT, ctypes.c_size_t]
        kernel32.GlobalAlloc.restype = wintypes.HGLOBAL
        kernel32.GlobalLock.argtypes = [wintypes.HGLOBAL]
        kernel32.GlobalLock.restype = wintypes.LPVOID
        kernel32.GlobalUnlock.argtypes = [wintypes.HGLOBAL]
        kernel32.GlobalUnlock.restype = wintypes.BOOL
        kernel32.GlobalFree.argtypes = [wintypes.HGLOBAL]
        kernel32.GlobalFree.restype = wintypes.HGLOBAL
        self._user32 = user32
        self._kernel32 = kernel32
        self._sequence: int | None = None
        self._cached: str | None = None

    def _open(self) -> None:
        for _ in range(self.OPEN_ATTEMPTS):
            if self._user32.OpenClipboard(None):
                return
            time.sleep(0.02)
        raise OSError("OpenClipboard failed: another program holds the clipboard")

    def _read_sync(self) -> str | None:
        sequence = self._user32.GetClipboardSequenceNumber()
        if sequence and sequence == self._sequence:
            return self._cached  # unchanged since the last read: no need to open it
        if not self._user32.IsClipboardFormatAvailable(self.CF_UNICODETEXT):
            self._sequence, self._cached = sequence, None
            return None
        self._open()
        try:
            handle = self._user32.GetClipboardData(self.CF_UNICODETEXT)
            if not handle:
                return None
            pointer = self._kernel32.GlobalLock(handle)
            if not pointer:
                return None
            try:
                text = self._ctypes.wstring_at(pointer)
            finally:
                self._kernel32.GlobalUnlock(handle)
        finally:
            self._user32.CloseClipboard()
        self._sequence, self._cached = sequence, text
        return text

    def _write_sync(self, text: str) -> None:
        data = self._ctypes.create_unicode_buffer(text)
        size = self._ctypes.sizeof(data)
        handle = self._kernel32.GlobalAlloc(self.GMEM_MOVEABLE, size)
        if not handle:
            raise OSError("GlobalAlloc failed")
        pointer = self._kernel32.GlobalLock(handle)
        self._ctypes.memmove(pointer, data, size)
        self._kernel32.GlobalUnlock(handle)
        self._open()
        try:
            self._user32.EmptyClipboard()
            if not self._user32.SetClipboardData(self.CF_UNICODETEXT, handle):
                self._kernel32.GlobalFree(handle)
                raise OSError("SetClipboardData failed")
            # On success the system owns `handle`: it must not be freed.
        finally:
            self._user32.CloseClipboard()

    async def _read(self) -> str | None:
        return await asyncio.to_thread(self._read_sync)

    async def _write(self, text: str) -> None:
        await asyncio.to_thread(self._write_sync, text)


def system_clipboard(platform: str = sys.platform, environ: dict[str, str] | None = None,
                     which: Callable[[str], str | None] = shutil.which) -> PollingClipboard:
    """The best clipboard backend available here; the in-memory one if none is (logged once)."""
    env = os.environ if environ is None else environ
    if platform == "win32":
        try:
            return WindowsClipboard()
        except (OSError, AttributeError, ImportError) as exc:
            log.info("the Windows clipboard is not available (%s): using an in-memory clipboard", exc)
            return MemoryClipboard()
    if platform == "darwin":
        if which("pbpaste") and which("pbcopy"):
            # pb* pick their text encoding from the locale: make it UTF-8.
            return CommandClipboard("macos", ["pbpaste"], ["pbcopy"], env={"LANG": "en_US.UTF-8"})
    elif env.get("WAYLAND_DISPLAY") and which("wl-paste") and which("wl-copy"):
        return CommandClipboard("wayland", ["wl-paste", "--no-newline", "--type", "text"],
                                ["wl-copy", "--type", "text/plain;charset=utf-8"])
    elif env.get("DISPLAY") and which("xclip"):
        return CommandClipboard("x11", ["xclip", "-selection", "clipboard", "-out"],
                                ["xclip", "-selection", "clipboard", "-in"])
    elif env.get("DISPLAY") and which("xsel"):
        return CommandClipboard("x11", ["xsel", "--clipboard", "--output"],
                                ["xsel", "--clipboard", "--input"])
    if platform == "darwin":
        hint = "pbcopy/pbpaste not found"
    elif platform.startswith("linux"):
        hint = "no display, or neither wl-clipboard (Wayland) nor xclip/xsel (X11) is installed"
    else:
        hint = f"no clipboard backend for {platform}"
    log.info("no system clipboard (%s): clipboard sync uses an in-memory clipboard", hint)
    return MemoryClipboard()
