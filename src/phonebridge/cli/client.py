"""A small HTTP client of the local API: finds the daemon through the state folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx


class CliError(Exception):
    """A failure to report to the user; `code` becomes the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


NOT_RUNNING = 3


class ApiClient:
    def __init__(self, home: Path, timeout: float = 15.0) -> None:
        self.home = home
        self.timeout = timeout
        try:
            info = json.loads((home / "daemon.json").read_text())
            self.port = int(info["api_port"])
            self.token = (home / "api-token").read_text().strip()
        except (OSError, ValueError, KeyError):
            raise CliError(
                f"the PhoneBridge daemon is not running for {home} (start it with `phonebridge`"
                " or `phonebridge daemon`)",
                NOT_RUNNING,
            ) from None
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"{self.base}/#token={self.token}"

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        try:
            response = httpx.request(
                method,
                self.base + path,
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout or self.timeout,
            )
        except httpx.ConnectError:
            raise CliError(
                f"the PhoneBridge daemon does not answer on {self.base} (start it with `phonebridge`)",
                NOT_RUNNING,
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"the daemon did not answer {method} {path} in time") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            message = data.get("error") or data.get("detail") if isinstance(data, dict) else None
            raise CliError(str(message or f"{method} {path}: HTTP {response.status_code}"))
        return data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, timeout: float | None = None) -> Any:
        return self.request("POST", path, body if body is not None else {}, timeout)
