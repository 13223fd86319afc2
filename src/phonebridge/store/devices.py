"""Repository of trusted (paired) devices and their pinned certificates."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .database import Database


@dataclass(frozen=True, slots=True)
class TrustedDevice:
    id: str
    name: str
    type: str
    protocol_version: int
    certificate: bytes
    last_host: str | None
    last_port: int | None
    paired_at: int


class DeviceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[TrustedDevice]:
        def query(conn: sqlite3.Connection) -> list[TrustedDevice]:
            rows = conn.execute("SELECT * FROM trusted_devices ORDER BY name").fetchall()
            return [TrustedDevice(**dict(row)) for row in rows]

        return await self._db.run(query)

    async def save(self, device: TrustedDevice) -> None:
        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO trusted_devices (id, name, type, protocol_version, certificate,"
                " last_host, last_port, paired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name=excluded.name, type=excluded.type,"
                " protocol_version=excluded.protocol_version, certificate=excluded.certificate,"
                " last_host=excluded.last_host, last_port=excluded.last_port",
                (device.id, device.name, device.type, device.protocol_version,
                 device.certificate, device.last_host, device.last_port, device.paired_at),
            )

        await self._db.transaction(upsert)

    async def delete(self, device_id: str) -> None:
        await self._db.transaction(
            lambda conn: conn.execute("DELETE FROM trusted_devices WHERE id = ?", (device_id,))
        )
