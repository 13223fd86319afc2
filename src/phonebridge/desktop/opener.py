"""Opening URLs and showing files for the user: xdg-open / `open` / os.startfile.

`reveal(path)` shows a file selected in the file manager where the platform can (Linux: the
org.freedesktop.FileManager1 D-Bus service via `gdbus` or `dbus-send`; macOS: `open -R`; Windows:
`explorer /select,`), else it opens the folder holding it. Commands run without a shell, with the
path or URL as one argument, and are not waited for beyond start-up; failures are logged, never
raised, like notifications.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT = 5.0
"""How long a helper (xdg-open, gdbus) may take before we stop waiting for its exit status."""


async def _run(*argv: str) -> bool:
    """Run a helper; True if it started and (within START_TIMEOUT) did not report failure."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=os.name != "nt",
        )
    except OSError as exc:
        log.info("cannot run %s: %s", argv[0], exc)
        return False
    try:
        code = await asyncio.wait_for(proc.wait(), START_TIMEOUT)
    except TimeoutError:
        return True  # still running (a browser started in the foreground): that is success
    return code == 0


class SystemOpener:
    """The Opener of desktop/base.py for the running platform."""

    async def open_url(self, url: str) -> None:
        if sys.platform == "win32":
            try:
                os.startfile(url)  # type: ignore[attr-defined]
            except OSError as exc:
                log.info("cannot open %s: %s", url, exc)
            return
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        if shutil.which(opener) is None or not await _run(opener, url):
            log.info("could not open %s (%s missing or failed)", url, opener)

    async def reveal(self, path: Path) -> None:
        path = Path(path)
        if sys.platform == "win32":
            if await _run("explorer", f"/select,{path}"):
                return
        elif sys.platform == "darwin":
            if await _run("open", "-R", str(path)):
                return
        else:
            uri = path.resolve().as_uri()
            if shutil.which("gdbus") and await _run(
                "gdbus", "call", "--session", "--dest", "org.freedesktop.FileManager1",
                "--object-path", "/org/freedesktop/FileManager1",
                "--method", "org.freedesktop.FileManager1.ShowItems", f"['{uri}']", "",
            ):
                return
            if shutil.which("dbus-send") and await _run(
                "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
                "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1.ShowItems",
                f"array:string:{uri}", "string:",
            ):
                return
        await self.open_url(str(path.parent if path.is_file() or not path.exists() else path))
