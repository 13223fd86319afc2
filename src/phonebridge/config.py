"""Settings and the state folder.

All state lives in one folder (`--home DIR`, else $PHONEBRIDGE_HOME, else the platform's user data
folder): our certificate and key, `config.toml`, the database, the API token and `daemon.json`
(where a running daemon's API listens). Settings come from `config.toml`, then command-line flags.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import platformdirs

from phonebridge.errors import StartupError
from phonebridge.protocol.identity import sanitize_device_name

DEFAULT_API_PORT = 8716
"""Local API port (127.0.0.1 only). Chosen to sit next to KDE Connect's 1716 without clashing."""


def default_home() -> Path:
    env = os.environ.get("PHONEBRIDGE_HOME")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_data_path("phonebridge", appauthor=False)


@dataclass
class Settings:
    """What the daemon is configured with. Field names are the keys of config.toml."""

    home: Path = field(default_factory=default_home)
    name: str = ""
    device_type: str = "desktop"
    bind: list[str] = field(default_factory=list)
    discovery_address: list[str] = field(default_factory=list)
    discovery: bool = True
    mdns: bool = True
    api_port: int = DEFAULT_API_PORT
    tcp_port_min: int = 1716
    tcp_port_max: int = 1764
    udp_port: int = 1716
    demo: bool = False
    download_dir: str = ""
    """Where received files go; empty = the user's Downloads folder."""
    thumbnail_cache_mb: int = 200
    """Disk the photo thumbnails may take (HOME/cache/thumbnails); least recently used go first."""

    @property
    def device_name(self) -> str:
        return sanitize_device_name(self.name or socket.gethostname()) or "PhoneBridge"

    @property
    def downloads(self) -> Path:
        """The download folder: `download_dir`, else the platform's Downloads folder."""
        if self.download_dir:
            return Path(self.download_dir).expanduser()
        return platformdirs.user_downloads_path()

    @property
    def thumbnail_cache_bytes(self) -> int:
        value = self.thumbnail_cache_mb
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise StartupError(f"thumbnail_cache_mb must be a whole number of MB (1 or more), "
                               f"not {value!r}")
        return value * 1024 * 1024

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def database_file(self) -> Path:
        return self.home / "phonebridge.db"

    @property
    def token_file(self) -> Path:
        return self.home / "api-token"

    @property
    def daemon_file(self) -> Path:
        return self.home / "daemon.json"


def load_settings(home: Path | None = None, **overrides: object) -> Settings:
    """Settings from `home/config.toml` with `overrides` (None values are ignored) on top."""
    settings = Settings(home=home or default_home())
    path = settings.config_file
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StartupError(f"cannot read {path}: {exc}; fix or delete the file") from None
        known = {f.name for f in fields(Settings)} - {"home"}
        for key, value in data.items():
            key = key.replace("-", "_")
            if key not in known:
                raise StartupError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
            setattr(settings, key, value)
    for key, value in overrides.items():
        if value is not None and value != []:
            setattr(settings, key, value)
    return settings


def ensure_home(settings: Settings) -> None:
    """Create the state folder (private) or explain why it cannot be used."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = settings.home / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"state folder {settings.home} is not usable ({exc.strerror or exc}); "
            "fix its permissions or choose another with --home DIR or PHONEBRIDGE_HOME"
        ) from None
