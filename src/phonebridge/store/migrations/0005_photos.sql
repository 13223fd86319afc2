-- The phone's media index (gallery/gallery.py): one row per photo or video in the media folders
-- of a device. `date` is the sort key: the EXIF capture time once the header was read
-- (`header_read` = 1), the file's mtime before. Times are milliseconds since the epoch.
CREATE TABLE photos (
    device_id     TEXT NOT NULL,
    path          TEXT NOT NULL,
    name          TEXT NOT NULL,
    folder        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mtime         INTEGER NOT NULL,
    date          INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    width         INTEGER,
    height        INTEGER,
    header_read   INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    thumbnail_bad INTEGER NOT NULL DEFAULT 0,
    scan          INTEGER NOT NULL,
    PRIMARY KEY (device_id, path)
) WITHOUT ROWID;
CREATE INDEX photos_by_date ON photos (device_id, date DESC, path);

-- When each device's media folders were last listed, and the number of that listing (rows of
-- earlier listings that it did not see are gone from the phone).
CREATE TABLE photo_scans (
    device_id  TEXT PRIMARY KEY,
    scan       INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL
);
