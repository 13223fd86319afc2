"""What plugins may use besides packets: repositories and settings, built in app.py.

Each feature adds its repository or service here as one optional field; plugins receive this object
as `ctx.services` and never a database connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Services:
    home: Path | None = None
    """The state folder (caches live below it)."""
    notifications: Any = None
    """store.notifications.NotificationRepository (phone notifications, muted apps)."""
    calls: Any = None
    """store.calls.CallRepository (the calls log)."""
    transfers: Any = None
    """core.transfers.TransferManager (file, text and URL shares, live and history)."""
    messages: Any = None
    """store.messages.MessageRepository (texts: threads, messages, attachments)."""
    contacts: Any = None
    """store.contacts.ContactRepository (the phone's contacts)."""
    download_dir: Path | None = None
    """Where received files go (setting `download_dir`)."""
    key_pem: bytes | None = None
    """Our TLS private key (PEM): the SFTP plugin logs in to the phone with it (PROTOCOL.md §8.14)."""
    cache_dir: Path | None = None
    """Disposable data (thumbnails): HOME/cache."""
    photos: Any = None
    """store.photos.PhotoRepository (the phone's media index: dates, sizes, thumbnail state)."""
