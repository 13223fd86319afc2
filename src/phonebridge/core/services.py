"""What plugins may use besides packets: repositories and settings, built in app.py.

Each feature adds its repository or service here as one optional field; plugins receive this object
as `ctx.services` and never a database connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Services:
    home: Path | None = None
    """The state folder (caches live below it)."""
