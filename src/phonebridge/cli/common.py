"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from .client import ApiClient, CliError


def resolve_device(client: ApiClient, wanted: str) -> dict[str, Any]:
    """A device by exact id, by unique name (case-insensitive), or by unique id prefix."""
    devices = client.get("/api/devices")
    for device in devices:
        if device["id"] == wanted:
            return device
    by_name = [d for d in devices if d["name"].casefold() == wanted.casefold()]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(d["id"] for d in by_name)
        raise CliError(f"{len(by_name)} devices are named {wanted!r} ({ids}): use the id")
    by_prefix = [d for d in devices if d["id"].startswith(wanted)] if len(wanted) >= 4 else []
    if len(by_prefix) == 1:
        return by_prefix[0]
    known = ", ".join(f"{d['name']} ({d['id']})" for d in devices) or "none"
    raise CliError(f"no device {wanted!r}; known devices: {known}")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def device_action(action: str, done: str, body: Callable[[argparse.Namespace], Any] = lambda a: {}):
    """A command that posts to /api/devices/{id}/ACTION and prints DONE (with {name})."""

    def command(client: ApiClient, args: argparse.Namespace) -> int:
        device = resolve_device(client, args.device)
        client.post(f"/api/devices/{device['id']}/{action}", body(args))
        print(done.format(name=device["name"]))
        return 0

    return command
