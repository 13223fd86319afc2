-- File, text and URL shares in both directions (core/transfers.py): the transfer history.
CREATE TABLE transfers (
    id          TEXT PRIMARY KEY,
    device      TEXT NOT NULL,
    device_name TEXT NOT NULL,
    direction   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    transferred INTEGER NOT NULL,
    state       TEXT NOT NULL,
    path        TEXT,
    content     TEXT,
    error       TEXT,
    started     INTEGER NOT NULL,
    finished    INTEGER
);
CREATE INDEX transfers_started ON transfers (started);
