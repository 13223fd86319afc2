-- Phone notifications (PROTOCOL.md §8.6): one row per (device, phone key), updated in place while
-- the phone updates it; `active` = still shown on the phone. Rows stay as history after removal.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    app         TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '',
    text        TEXT NOT NULL DEFAULT '',
    time        INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    dismissable INTEGER NOT NULL DEFAULT 0,
    reply_id    TEXT,
    actions     TEXT NOT NULL DEFAULT '[]',
    icon        TEXT,
    silent      INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,
    UNIQUE (device_id, key)
);
CREATE INDEX notifications_by_time ON notifications (device_id, time DESC);

-- Full-text index over notifications (rowid = notifications.id), kept in step by
-- store/notifications.py (no triggers: the migration runner splits statements on semicolons).
CREATE VIRTUAL TABLE notifications_fts USING fts5(
    app, title, text,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

-- Apps whose notifications raise no desktop toast (still stored and listed).
CREATE TABLE muted_apps (
    device_id TEXT NOT NULL,
    app       TEXT NOT NULL,
    PRIMARY KEY (device_id, app)
);

-- The calls log (PROTOCOL.md §8.8): one row per call state change.
CREATE TABLE calls (
    id        INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    event     TEXT NOT NULL,
    number    TEXT,
    name      TEXT,
    time      INTEGER NOT NULL
);
CREATE INDEX calls_by_time ON calls (device_id, time DESC);
