"""One daemon per state folder: an exclusive lock on `HOME/daemon.lock`, held while it runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from phonebridge.errors import StartupError


class StateLock:
    def __init__(self, home: Path) -> None:
        self.path = home / "daemon.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StartupError(
                f"another PhoneBridge daemon already uses {self.path.parent}; stop it with "
                "`phonebridge stop`, or give this one its own --home"
            ) from None
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
