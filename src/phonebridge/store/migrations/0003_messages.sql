-- Texts (PROTOCOL.md §8.7) and the phone's contacts (§8.9).
-- No triggers: store/messages.py and store/contacts.py keep the FTS tables in step in the same
-- transaction as the rows (the migration runner splits statements on semicolons).

-- One row per conversation. `complete`: paged back to the thread's first message (§8.7).
CREATE TABLE sms_threads (
    device_id TEXT NOT NULL,
    thread_id INTEGER NOT NULL,
    addresses TEXT NOT NULL DEFAULT '[]',
    is_group INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    last_date INTEGER NOT NULL DEFAULT 0,
    last_id INTEGER,
    message_count INTEGER NOT NULL DEFAULT 0,
    unread INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, thread_id)
);

-- `id` orders by date (date * 4096 + n), so FTS5 can return the newest hits first by rowid.
-- kind: 'sms' or 'mms' (separate id spaces on the phone) or 'local' (sent here, not yet confirmed).
CREATE TABLE sms_messages (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    phone_id INTEGER NOT NULL,
    thread_id INTEGER,
    date INTEGER NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    addresses TEXT NOT NULL DEFAULT '[]',
    type INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 1,
    sub_id INTEGER NOT NULL DEFAULT -1,
    event INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    UNIQUE (device_id, kind, phone_id)
);
CREATE INDEX sms_messages_thread ON sms_messages (device_id, thread_id, date);
CREATE INDEX sms_messages_unread ON sms_messages (device_id, thread_id) WHERE read = 0 AND type = 1;

CREATE TABLE sms_attachments (
    message_id INTEGER NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
    part_id INTEGER NOT NULL,
    mime_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    unique_identifier TEXT NOT NULL DEFAULT '',
    thumbnail TEXT,
    PRIMARY KEY (message_id, part_id)
);

CREATE VIRTUAL TABLE sms_messages_fts USING fts5(
    body, content='sms_messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2', prefix='1 2 3'
);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    uid TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    timestamp INTEGER NOT NULL DEFAULT 0,
    photo TEXT,
    UNIQUE (device_id, uid)
);

CREATE TABLE contact_numbers (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    normalized TEXT NOT NULL
);
CREATE INDEX contact_numbers_normalized ON contact_numbers (normalized);
CREATE INDEX contact_numbers_contact ON contact_numbers (contact_id);

CREATE VIRTUAL TABLE contacts_fts USING fts5(
    name, content='contacts', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2', prefix='1 2 3'
);
