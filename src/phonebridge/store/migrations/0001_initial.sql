-- Devices we are paired with: the pinned certificate is the trust anchor (PROTOCOL.md §4.4).
CREATE TABLE trusted_devices (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    type             TEXT NOT NULL,
    protocol_version INTEGER NOT NULL,
    certificate      BLOB NOT NULL,
    last_host        TEXT,
    last_port        INTEGER,
    paired_at        INTEGER NOT NULL
);
