"""The gallery (gallery/gallery.py) as the daemon serves it: a real daemon and the demo phone over
TLS on 127.0.0.1, the phone's real asyncssh SFTP server over a seeded Android tree (2,000 camera
photos, screenshots, WhatsApp pictures, videos, broken files, a symlink loop), the real SQLite
index and the thumbnail cache on disk. Plus the index repository alone on a real SQLite file."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import time

import pytest
from PIL import Image

import helpers
from helpers import wait_for
from phonebridge.demo.phone import DemoPhone
from phonebridge.demo.sftp import SftpFeature
from phonebridge.demo.storage import INTERNAL, exif_segment, phone_to_local, seed_storage
from phonebridge.errors import DeviceError, StartupError
from phonebridge.gallery import Gallery, PhotoError, ThumbnailCache
from phonebridge.store.database import Database
from phonebridge.store.photos import HeaderResult, MediaFile, PhotoRepository

pytestmark = pytest.mark.timeout(180)

BROKEN = f"{INTERNAL}/DCIM/Camera/broken.jpg"
TRUNCATED = f"{INTERNAL}/DCIM/Camera/truncated.jpg"
TEXT = f"{INTERNAL}/Pictures/notes.jpg"
EMPTY = f"{INTERNAL}/Pictures/empty.jpg"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One seeded tree per module; each test's phone gets a hard-linked copy (files never change
    in place: tests add, replace or delete)."""
    root = tmp_path_factory.mktemp("seed") / "fs"
    return root, seed_storage(root, photos=2000, hostile=True)


@pytest.fixture
async def rig(tmp_path, seeded):
    source, summary = seeded
    phone_home = tmp_path / "phone"
    phone_home.mkdir()
    shutil.copytree(source, phone_home / "fs", symlinks=True, copy_function=os.link)
    daemon = await helpers.start_daemon(tmp_path / "home")
    phone = DemoPhone(phone_home, storage=False)  # serve the copied tree as it is
    await helpers.link_and_pair(daemon, phone)
    await wait_for(lambda: daemon.manager.devices[phone.device_id].is_paired and phone.is_paired,
                   what="paired")
    await wait_for(lambda: "sftp" in daemon.manager.devices[phone.device_id].plugins,
                   what="sftp plugin")
    try:
        yield daemon, phone, summary
    finally:
        await phone.stop()
        await daemon.stop()


async def until_complete(gallery: Gallery, device_id: str, timeout: float = 90) -> dict:
    """Poll the first page until the background task has read every header."""
    deadline = time.monotonic() + timeout
    while True:
        page = await gallery.photos(device_id, limit=1)
        if page["complete"]:
            return page
        assert time.monotonic() < deadline, "the gallery never completed"
        await asyncio.sleep(0.05)


async def everything(gallery: Gallery, device_id: str, step: int = 500) -> list[dict]:
    items: list[dict] = []
    while True:
        page = await gallery.photos(device_id, offset=len(items), limit=step)
        items += page["items"]
        if len(items) >= page["total"] or not page["items"]:
            return items


def expected_date(summary, path: str) -> int:
    """EXIF dates (the JPEGs) to the millisecond; file times in whole seconds, as SFTP version 3
    (asyncssh here, Apache MINA on Android) carries them."""
    date = summary.dates[path]
    return date if path.endswith(".jpg") else date // 1000 * 1000


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        return im.size


# -- listing ---------------------------------------------------------------------------------------


async def test_newest_first_with_exif_dates_beating_file_times(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    first = await gallery.photos(phone.device_id)  # limit 60
    assert first["errors"] == []
    assert len(first["items"]) == 60
    shown = [i["path"] for i in first["items"] if i["path"] not in summary.hostile]
    assert shown == summary.newest[: len(shown)]  # right already, before the background finished
    whatsapp = [p for p in summary.dates if "/WhatsApp/" in p]
    assert len(whatsapp) == 6
    # Their files were saved in the last ten days, but their EXIF says they are old.
    assert not set(whatsapp) & {i["path"] for i in first["items"]}
    for item in first["items"]:
        if item["path"] in summary.dates:
            assert item["date"] == expected_date(summary, item["path"]), item

    await until_complete(gallery, phone.device_id)
    items = await everything(gallery, phone.device_id)
    listed = [i["path"] for i in items]
    assert [p for p in listed if p not in summary.hostile] == summary.newest
    assert {i["path"]: i["date"] for i in items if i["path"] in summary.dates} == {
        p: expected_date(summary, p) for p in summary.dates}
    assert len(listed) == len(set(listed))
    # Hidden and .nomedia folders are not media; the symlink loop and Android/data broke nothing.
    assert not set(summary.skipped) & set(listed)
    assert not [p for p in listed if "/Loop/" in p or "/Android/" in p or "/." in p]
    assert (await gallery.photos(phone.device_id))["errors"] == []

    by_path = {i["path"]: i for i in items}
    camera = next(p for p in summary.newest if "/DCIM/Camera/PXL_" in p and p.endswith(".jpg"))
    assert by_path[camera]["kind"] == "image" and by_path[camera]["folder"] == "DCIM/Camera"
    assert {(by_path[p]["width"], by_path[p]["height"]) for p in summary.newest
            if "/DCIM/Camera/PXL_" in p and p.endswith(".jpg")} <= {(1024, 768), (768, 1024)}
    videos = [i for i in items if i["kind"] == "video"]
    assert len(videos) == summary.videos
    sd = [p for p in listed if p.startswith("/storage/1A2B-3C4D/")]
    assert len(sd) == summary.sd_photos


async def test_pages_follow_each_other(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    await gallery.photos(phone.device_id)
    await until_complete(gallery, phone.device_id)
    whole = await gallery.photos(phone.device_id, limit=500)
    pages = []
    for offset in range(0, 500, 37):
        page = await gallery.photos(phone.device_id, offset=offset, limit=37)
        assert page["total"] == whole["total"] == len(summary.newest) + 4  # 4 broken media files
        pages += page["items"]
    assert pages[:500] == whole["items"]
    past = await gallery.photos(phone.device_id, offset=whole["total"], limit=60)
    assert past["items"] == [] and past["total"] == whole["total"]


async def test_a_refresh_sees_new_changed_and_deleted_files(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    fs = phone.home / "fs"
    before = await gallery.photos(phone.device_id)
    newest = before["items"][0]
    taken = int(time.time()) * 1000 - 5000
    new_path = f"{INTERNAL}/DCIM/Camera/PXL_new.jpg"
    image = io.BytesIO()
    Image.new("RGB", (300, 200), "green").save(image, "JPEG")
    data = image.getvalue()
    data = data[:2] + exif_segment(taken, size=(300, 200)) + data[2:]
    phone_to_local(fs, new_path).write_bytes(data)
    gone = summary.newest[1]
    phone_to_local(fs, gone).unlink()

    cached = await gallery.photos(phone.device_id)  # within a minute: the index as it was
    assert cached["items"][0]["path"] == newest["path"] and cached["total"] == before["total"]

    after = await gallery.photos(phone.device_id, refresh=True)
    assert after["total"] == before["total"]  # one more, one less
    top = after["items"][0]
    assert (top["path"], top["date"], top["width"], top["height"]) == (new_path, taken, 300, 200)
    assert gone not in [i["path"] for i in after["items"]]

    # The same path with other content (another size): its header is read again.
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(image, "JPEG")
    replaced = image.getvalue()
    replaced = replaced[:2] + exif_segment(taken - 1000, size=(64, 48)) + replaced[2:]
    temp = phone_to_local(fs, new_path).with_suffix(".tmp")
    temp.write_bytes(replaced)
    os.replace(temp, phone_to_local(fs, new_path))
    again = await gallery.photos(phone.device_id, refresh=True)
    top = next(i for i in again["items"] if i["path"] == new_path)
    assert (top["date"], top["width"], top["height"], top["size"]) == (
        taken - 1000, 64, 48, len(replaced))
    assert jpeg_size(await gallery.thumbnail(phone.device_id, new_path)) == (64, 48)


async def test_an_old_listing_is_answered_at_once_and_renewed_behind_the_answer(rig) -> None:
    daemon, phone, _summary = rig
    gallery: Gallery = daemon.gallery
    before = await gallery.photos(phone.device_id)
    new_path = f"{INTERNAL}/DCIM/Camera/PXL_later.jpg"
    image = io.BytesIO()
    Image.new("RGB", (120, 90), "blue").save(image, "JPEG")
    data = image.getvalue()
    data = data[:2] + exif_segment(int(time.time()) * 1000, size=(120, 90)) + data[2:]
    phone_to_local(phone.home / "fs", new_path).write_bytes(data)
    gallery.rescan_after = 0  # the listing is now "older than a minute"
    at_once = await gallery.photos(phone.device_id)
    assert at_once["total"] == before["total"]  # the index as it was, no waiting for the phone
    gallery.rescan_after = 3600
    page = await wait_for_page(gallery, phone.device_id, lambda p: p["items"][0]["path"] == new_path)
    assert page["total"] == before["total"] + 1


async def wait_for_page(gallery: Gallery, device_id: str, check, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        page = await gallery.photos(device_id)
        if check(page):
            return page
        assert time.monotonic() < deadline, "the gallery did not change"
        await asyncio.sleep(0.05)


# -- thumbnails ------------------------------------------------------------------------------------


async def test_thumbnails_come_from_the_cache_the_second_time(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    page = await gallery.photos(phone.device_id)
    good = [i for i in page["items"] if i["error"] is None and i["kind"] == "image"
            and i["path"] not in summary.hostile]
    thumbnails = await asyncio.gather(*(gallery.thumbnail(phone.device_id, i["path"])
                                        for i in good))
    for item, data in zip(good, thumbnails, strict=True):
        width, height = jpeg_size(data)
        assert max(width, height) == 320
        # Orientation applied: a portrait photo gives a portrait thumbnail.
        assert (width > height) == (item["width"] > item["height"]), item
    assert any(i["height"] > i["width"] for i in good)  # EXIF orientation 6 is among them
    cache_files = list((daemon.settings.home / "cache" / "thumbnails").rglob("*.jpg"))
    assert len(cache_files) == len(good)

    # From now on any file read drops the phone's SFTP connection: cached thumbnails need none.
    await until_complete(gallery, phone.device_id)  # the background reads nothing more either
    sftp = phone.feature(SftpFeature)
    logins = len(sftp.logins)
    sftp.faults.drop_after_bytes = 0
    again = await asyncio.gather(*(gallery.thumbnail(phone.device_id, i["path"]) for i in good))
    assert again == thumbnails
    assert len(sftp.logins) == logins  # no reconnection either

    # They survive a restart of the daemon (the cache is on disk).
    await phone.stop()
    await daemon.stop()
    restarted = await helpers.start_daemon(daemon.settings.home)
    try:
        after = await restarted.gallery.thumbnail(phone.device_id, good[0]["path"])
        assert after == thumbnails[0]  # the phone is not even connected
    finally:
        await restarted.stop()


async def test_screenshots_videos_odd_names_and_concurrent_requests(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    await gallery.photos(phone.device_id)
    await until_complete(gallery, phone.device_id)
    screenshot = next(p for p in summary.newest if "/Screenshots/" in p)
    width, height = jpeg_size(await gallery.thumbnail(phone.device_id, screenshot))
    assert max(width, height) == 320
    video = next(p for p in summary.newest if p.endswith(".mp4"))
    assert await gallery.thumbnail(phone.device_id, video) is None  # an icon: no ffmpeg
    for path in summary.odd_names:
        assert max(jpeg_size(await gallery.thumbnail(phone.device_id, path))) == 320
    camera = [p for p in summary.newest if "/DCIM/Camera/PXL_" in p][100]
    same = await asyncio.gather(*(gallery.thumbnail(phone.device_id, camera) for _ in range(12)))
    assert len(set(same)) == 1 and max(jpeg_size(same[0])) == 320
    assert len(list((daemon.settings.home / "cache" / "thumbnails").rglob("*.jpg"))) == (
        2 + len(summary.odd_names))


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used(rig, tmp_path) -> None:
    daemon, phone, summary = rig
    cache = ThumbnailCache(tmp_path / "small", max_bytes=100_000)
    gallery = Gallery(daemon.manager, daemon.services.photos, cache)
    try:
        page = await gallery.photos(phone.device_id)
        paths = [i["path"] for i in page["items"] if i["error"] is None and i["kind"] == "image"
                 and i["path"] not in summary.hostile][:40]
        made = {}
        for path in paths:
            made[path] = await gallery.thumbnail(phone.device_id, path)
            on_disk = sum(f.stat().st_size for f in (tmp_path / "small").rglob("*.jpg"))
            assert on_disk <= 100_000
        assert sum(len(t) for t in made.values()) > 3 * 100_000  # so eviction really happened
        records = [await daemon.services.photos.get(phone.device_id, p) for p in paths]
        cached = [r.path for r in records
                  if cache.get(phone.device_id, r.path, r.size, r.mtime) is not None]
        assert paths[-1] in cached and paths[0] not in cached
        assert cached == paths[-len(cached):]  # the most recent ones stayed
        # A restarted cache knows its files and bound; an evicted thumbnail is simply made again.
        reopened = ThumbnailCache(tmp_path / "small", max_bytes=100_000)
        assert reopened.total_bytes == cache.total_bytes <= 100_000
        assert await gallery.thumbnail(phone.device_id, paths[0]) == made[paths[0]]
    finally:
        await gallery.close()


# -- bad input ---------------------------------------------------------------------------------


async def test_broken_files_are_flagged_and_the_rest_works(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    await gallery.photos(phone.device_id)
    expected = {BROKEN: "not an image", TRUNCATED: "broken image", TEXT: "not an image",
                EMPTY: "empty file"}
    for path, reason in expected.items():
        with pytest.raises(PhotoError) as caught:
            await gallery.thumbnail(phone.device_id, path)
        assert caught.value.reason == reason and caught.value.path == path
        assert str(caught.value).startswith(reason)
        with pytest.raises(PhotoError):  # known bad: not read again
            await gallery.thumbnail(phone.device_id, path)
    items = {i["path"]: i for i in await everything(gallery, phone.device_id)}
    assert {p: items[p]["error"] for p in expected} == expected
    assert items[TRUNCATED]["width"] == 1024  # its header was fine: only decoding tells
    good = [p for p in summary.newest if p.endswith(".jpg")][:5]
    for path in good:
        assert items[path]["error"] is None
        assert max(jpeg_size(await gallery.thumbnail(phone.device_id, path))) == 320


async def test_a_session_dropped_mid_listing_still_gives_a_gallery(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    sftp = phone.feature(SftpFeature)
    sftp.faults.drop_after_entries = 500  # DCIM/Camera of the internal storage has ~1,900
    sftp.faults.times = 1
    page = await gallery.photos(phone.device_id)
    assert page["errors"] == []  # PhoneFiles reconnected and listed again
    assert page["total"] == len(summary.newest) + 4
    assert [p for p in (i["path"] for i in page["items"]) if p not in summary.hostile] == (
        summary.newest[: len(page["items"]) - len([i for i in page["items"]
                                                   if i["path"] in summary.hostile])])

    # Now the phone drops every long listing: the refresh keeps what was indexed and says why.
    sftp.faults.drop_after_entries = 500
    sftp.faults.times = None
    again = await gallery.photos(phone.device_id, refresh=True)
    assert again["total"] == page["total"]
    assert again["items"] == page["items"]
    assert again["errors"] == [{"path": f"{INTERNAL}/DCIM/Camera", "reason": "connection lost"}]


async def test_a_phone_gone_away_still_shows_its_index_and_cached_thumbnails(rig) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    page = await gallery.photos(phone.device_id)
    first = page["items"][0]["path"]
    thumbnail = await gallery.thumbnail(phone.device_id, first)
    await phone.stop()
    await wait_for(lambda: not daemon.manager.is_linked(phone.device_id), what="unlinked")
    offline = await gallery.photos(phone.device_id)
    assert offline["items"] == page["items"] and offline["complete"] is False
    assert len(offline["errors"]) == 1 and "not reachable" in offline["errors"][0]["reason"]
    assert await gallery.thumbnail(phone.device_id, first) == thumbnail
    with pytest.raises(DeviceError):
        await gallery.thumbnail(phone.device_id, page["items"][1]["path"])


# -- originals and downloads ---------------------------------------------------------------------


async def test_original_streams_the_file_and_pull_keeps_dates(rig, tmp_path) -> None:
    daemon, phone, summary = rig
    gallery: Gallery = daemon.gallery
    path = summary.newest[0]
    local = phone_to_local(phone.home / "fs", path)
    size, kind, chunks = await gallery.original(phone.device_id, path)
    data = b"".join([chunk async for chunk in chunks])
    assert (size, kind, data) == (local.stat().st_size, "image/jpeg", local.read_bytes())
    transfers = await gallery.pull(phone.device_id, [path], tmp_path / "pulled")
    await wait_for(lambda: all(t.state == "done" for t in transfers), what="pulled")
    pulled = tmp_path / "pulled" / local.name
    assert pulled.read_bytes() == local.read_bytes()
    assert int(pulled.stat().st_mtime) == int(local.stat().st_mtime)


# -- the index alone ---------------------------------------------------------------------------


async def test_index_upserts_ten_thousand_rows_and_pages_newest_first(tmp_path) -> None:
    db = Database(tmp_path / "pb.db")
    await db.open()
    repo = PhotoRepository(db)
    files = [MediaFile(f"/s/DCIM/Camera/IMG_{i:05d}.jpg", f"IMG_{i:05d}.jpg", "DCIM/Camera",
                       1000 + i, 1_600_000_000_000 + (i // 2) * 1000, "image")
             for i in range(10_000)]
    await repo.save_listing("phone", files, scanned_at=1)
    await repo.save_listing("other", files[:10], scanned_at=1)
    page, total = await repo.page("phone", 0, 4)
    assert total == 10_000
    # Newest first; the same date ordered by path.
    assert [r.path for r in page] == [f.path for f in (files[9998], files[9999], files[9996],
                                                       files[9997])]
    assert [r.path for r in (await repo.page("phone", 9_998, 60))[0]] == [files[0].path,
                                                                          files[1].path]

    # A header moves a photo to its EXIF date; a stale result (other size) is ignored.
    moved = files[5000]
    assert await repo.save_headers("phone", [
        HeaderResult(moved.path, moved.size, moved.mtime, 1_700_000_000_000, 4000, 3000),
        HeaderResult(files[1].path, 1, files[1].mtime, 1_800_000_000_000, 1, 1),
    ]) == 1
    top = (await repo.page("phone", 0, 1))[0][0]
    assert (top.path, top.date, top.width, top.header_read) == (moved.path, 1_700_000_000_000,
                                                                 4000, True)
    assert await repo.count_unread("phone") == 9_999
    await repo.mark_thumbnail_bad("phone", files[7].path, "broken image")

    # The next listing: one file changed size, one is gone, one is new; the others keep their
    # header. Files below a folder that could not be read this time stay as they were.
    changed = MediaFile(moved.path, moved.name, moved.folder, 1, moved.mtime, "image")
    kept_folder = [MediaFile(f"/s/Pictures/x{i}.png", f"x{i}.png", "Pictures", 5, 5, "image")
                   for i in range(3)]
    await repo.save_listing("phone", [*files[:5000], *files[5001:9000], *kept_folder],
                            scanned_at=2)
    await repo.save_listing("phone", [changed, *files[:5000], *files[5001:8000]], scanned_at=3,
                            keep_under=["/s/Pictures"])
    again = await repo.get("phone", moved.path)
    assert (again.date, again.header_read, again.size, again.width) == (moved.mtime, False, 1,
                                                                        None)
    assert (await repo.get("phone", files[7].path)).error == "broken image"
    assert await repo.get("phone", files[8500].path) is None
    assert await repo.get("phone", "/s/Pictures/x1.png") is not None
    assert (await repo.page("phone", 0, 0))[1] == 8_000 + 3
    assert (await repo.page("other", 0, 100))[1] == 10
    assert await repo.scanned_at("phone") == 3
    await db.close()

    reopened = Database(tmp_path / "pb.db")
    await reopened.open()
    assert (await PhotoRepository(reopened).page("phone", 0, 0))[1] == 8_003
    await reopened.close()


# -- settings ----------------------------------------------------------------------------------------


async def test_the_thumbnail_cache_size_is_a_setting(tmp_path) -> None:
    daemon = await helpers.start_daemon(tmp_path / "home", thumbnail_cache_mb=3)
    try:
        assert daemon.gallery.cache.max_bytes == 3 * 1024 * 1024
    finally:
        await daemon.stop()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.toml").write_text('thumbnail_cache_mb = "lots"\n')
    with pytest.raises(StartupError, match="thumbnail_cache_mb"):
        await helpers.start_daemon(tmp_path / "bad")
