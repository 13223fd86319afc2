"""The photos and phone-files routes (api/routes/photos.py) over real TLS, SSH and SQLite: a daemon
on 127.0.0.1, the demo phone with a seeded hostile storage served by its asyncssh SFTP server.

What a client sees: the guards (token, Host, Origin), input validation, and the statuses the
contract promises (404 "no preview", 422 "broken image", 404/403 for missing/refused phone paths).
"""

from __future__ import annotations

import asyncio
import os
from io import BytesIO
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import helpers
from helpers import wait_for
from phonebridge.demo.phone import DemoPhone
from phonebridge.api.routes.photos import (
    INLINE_TYPES, content_disposition, phone_path, served_type,
)
from phonebridge.demo.storage import INTERNAL, SD_CARD, phone_to_local, seed_storage
from phonebridge.plugins.share import safe_filename

pytestmark = pytest.mark.timeout(120)

PHOTOS = 120


@pytest.fixture
async def rig(tmp_path):
    phone_home = tmp_path / "phone"
    summary = await asyncio.to_thread(seed_storage, phone_home / "fs", photos=PHOTOS, hostile=True)
    daemon = await helpers.start_daemon(tmp_path / "home", download_dir=str(tmp_path / "dl"))
    phone = DemoPhone(phone_home)
    await helpers.link_and_pair(daemon, phone)
    await wait_for(lambda: "sftp" in daemon.manager.devices[phone.device_id].plugins,
                   what="the sftp plugin")
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.api_port}",
                               headers={"Authorization": f"Bearer {daemon.token}"}, timeout=60)
    try:
        yield daemon, phone, client, summary, tmp_path
    finally:
        await client.aclose()
        await phone.stop()
        await daemon.stop()


def dev(phone: DemoPhone, rest: str) -> str:
    return f"/api/devices/{phone.device_id}/{rest}"


def q(path: str) -> str:
    return quote(path, safe="")


async def finished(client: httpx.AsyncClient, transfers: list[dict]) -> list[dict]:
    async def all_ended() -> list[dict]:
        while True:
            now = [(await client.get(f"/api/transfers/{t['id']}")).json() for t in transfers]
            if all(t["state"] != "active" for t in now):
                return now
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(all_ended(), 60)


async def test_every_route_needs_the_token_a_local_host_and_no_foreign_origin(rig) -> None:
    daemon, phone, client, summary, _ = rig
    photo = summary.newest[0]
    routes = [
        ("GET", dev(phone, "photos")),
        ("GET", dev(phone, f"photos/thumbnail?path={q(photo)}")),
        ("GET", dev(phone, f"photos/original?path={q(photo)}")),
        ("POST", dev(phone, "pull")),
        ("GET", dev(phone, "phone-files")),
        ("POST", dev(phone, "push")),
        ("POST", dev(phone, f"push/upload?to={q(INTERNAL)}")),
    ]
    base = f"http://127.0.0.1:{daemon.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as bare:
        for method, url in routes:
            body = {"paths": [photo]} if method == "POST" else None
            response = await bare.request(method, url, json=body)
            assert response.status_code == 401, (method, url)
            assert "token" in response.json()["error"]
            wrong = await bare.request(method, url, json=body,
                                       headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            rebound = await client.request(method, url, json=body, headers={"Host": "evil.example"})
            assert rebound.status_code == 421, (method, url)
            foreign = await client.request(method, url, json=body,
                                           headers={"Origin": "http://evil.example"})
            assert foreign.status_code == 403, (method, url)
    # the same requests with the token and our own origin are answered
    own = await client.get(dev(phone, "photos?limit=1"),
                           headers={"Origin": f"http://127.0.0.1:{daemon.api_port}"})
    assert own.status_code == 200


async def test_phone_paths_and_lists_are_validated(rig, tmp_path: Path) -> None:
    _, phone, client, summary, _ = rig
    bad_paths = ["DCIM/Camera/x.jpg", "", f"{INTERNAL}/../../etc/passwd", f"{INTERNAL}/./DCIM",
                 f"{INTERNAL}/a\x00b.jpg"]
    for bad in bad_paths:
        for route in ("photos/thumbnail", "photos/original", "phone-files"):
            if route == "phone-files" and bad == "":
                continue  # no path is the roots
            response = await client.get(dev(phone, f"{route}?path={q(bad)}"))
            assert response.status_code == 400, (route, bad, response.text)
        response = await client.post(dev(phone, "pull"), json={"paths": [summary.newest[0], bad]})
        assert response.status_code == 400, bad
    too_long = "/" + "a" * 5000
    assert (await client.get(dev(phone, f"photos/thumbnail?path={too_long}"))).status_code == 422
    # bounded lists and pages
    assert (await client.post(dev(phone, "pull"), json={"paths": []})).status_code == 422
    many = [f"{INTERNAL}/DCIM/{i}.jpg" for i in range(10_001)]
    assert (await client.post(dev(phone, "pull"), json={"paths": many})).status_code == 422
    for query in ("limit=0", "limit=501", "offset=-1", "limit=x"):
        assert (await client.get(dev(phone, f"photos?{query}"))).status_code == 422, query
    # a pull target must be an absolute folder
    response = await client.post(dev(phone, "pull"), json={"paths": [summary.newest[0]], "to": "rel/dir"})
    assert response.status_code == 400
    (tmp_path / "a-file").write_text("x")
    response = await client.post(dev(phone, "pull"),
                                 json={"paths": [summary.newest[0]], "to": str(tmp_path / "a-file")})
    assert response.status_code == 400 and "not a folder" in response.text
    # push: absolute, existing local files; an absolute phone folder
    local = tmp_path / "up.txt"
    local.write_text("hello")
    for body in ({"paths": ["up.txt"], "to": INTERNAL},
                 {"paths": [str(tmp_path / "missing")], "to": INTERNAL},
                 {"paths": [str(local)], "to": "Download"}, {"paths": [str(local)], "to": f"{INTERNAL}/.."}):
        response = await client.post(dev(phone, "push"), json=body)
        assert response.status_code == 400, (body, response.text)
    assert (await client.post(dev(phone, "push"), json={"paths": [], "to": INTERNAL})).status_code == 422
    response = await client.post(dev(phone, "push/upload?to=relative"), files={"f": ("a.txt", b"x")})
    assert response.status_code == 400


async def test_unknown_device_is_404(rig) -> None:
    _, _, client, summary, _ = rig
    photo = q(summary.newest[0])
    for method, url in (("GET", "photos"), ("GET", f"photos/thumbnail?path={photo}"),
                        ("GET", f"photos/original?path={photo}"), ("GET", "phone-files"),
                        ("POST", "pull")):
        response = await client.request(method, f"/api/devices/no-such-device/{url}",
                                        json={"paths": [summary.newest[0]]} if method == "POST" else None)
        assert response.status_code == 404, url
        assert "no-such-device" in response.json()["error"]


async def test_gallery_page_thumbnails_and_originals(rig) -> None:
    _, phone, client, summary, tmp = rig
    page = (await client.get(dev(phone, "photos?limit=40"))).json()
    shown = [p["path"] for p in page["items"] if p["path"] not in summary.hostile]  # broken ones too
    assert shown == summary.newest[: len(shown)] and len(shown) >= 35
    assert page["total"] == len(summary.newest) + len([h for h in summary.hostile if h.endswith(".jpg")])
    first = next(p for p in page["items"] if p["path"] == summary.newest[0])
    assert {"path", "name", "size", "date", "kind", "width", "height"} <= set(first)
    assert first["kind"] == "image" and first["date"] == summary.dates[first["path"]]
    second = (await client.get(dev(phone, "photos?offset=40&limit=40"))).json()
    more = [p["path"] for p in second["items"] if p["path"] not in summary.hostile]
    assert more == summary.newest[len(shown): len(shown) + len(more)] and len(more) >= 35

    thumb = await client.get(dev(phone, f"photos/thumbnail?path={q(first['path'])}"))
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"].startswith("private, max-age=")
    image = Image.open(BytesIO(thumb.content))
    assert image.format == "JPEG" and max(image.size) <= 320

    local = phone_to_local(phone.home / "fs", first["path"])
    original = await client.get(dev(phone, f"photos/original?path={q(first['path'])}"))
    assert original.status_code == 200
    assert original.headers["content-type"] == "image/jpeg"
    assert int(original.headers["content-length"]) == local.stat().st_size
    assert original.content == local.read_bytes()
    assert original.headers["content-disposition"].startswith("inline")
    assert "sandbox" in original.headers["content-security-policy"]

    odd = next(p for p in summary.odd_names if "quoted" in p)
    download = await client.get(dev(phone, f"photos/original?path={q(odd)}&download=1"))
    assert download.status_code == 200
    disposition = download.headers["content-disposition"]
    # the name a download gets is the one pull gives the file (plugins/share.py safe_filename)
    assert disposition == "attachment; filename=\"it's _quoted_.jpg\"; filename*=UTF-8''it%27s%20_quoted_.jpg"
    assert download.content == phone_to_local(phone.home / "fs", odd).read_bytes()

    emoji = next(p for p in summary.odd_names if "🎉 party" in p)
    response = await client.get(dev(phone, f"photos/original?path={q(emoji)}&download=1"))
    assert response.status_code == 200
    assert quote("🎉 party 🥳.jpg", safe="") in response.headers["content-disposition"]


async def test_no_preview_broken_images_and_unsafe_types(rig) -> None:
    _, phone, client, summary, _ = rig
    video = next(p for p in summary.newest if p.endswith(".mp4"))
    response = await client.get(dev(phone, f"photos/thumbnail?path={q(video)}"))
    assert response.status_code == 404
    assert response.json() == {"error": "no preview"}
    original = await client.get(dev(phone, f"photos/original?path={q(video)}"))
    assert original.status_code == 200 and original.headers["content-type"] == "video/mp4"

    for broken in (f"{INTERNAL}/DCIM/Camera/broken.jpg", f"{INTERNAL}/Pictures/notes.jpg"):
        response = await client.get(dev(phone, f"photos/thumbnail?path={q(broken)}"))
        assert response.status_code == 422, (broken, response.text)
        assert response.json()["error"].startswith("broken image")
    # a file that is not a picture at all has no preview
    document = f"{INTERNAL}/Documents/Work/2025/Budget.csv"
    assert (await client.get(dev(phone, f"photos/thumbnail?path={q(document)}"))).status_code == 404
    # the rest of the gallery still works, and the broken one is marked in the listing
    items = (await client.get(dev(phone, "photos?limit=500"))).json()["items"]
    marked = {p["path"]: p["error"] for p in items if p["error"]}
    assert marked.get(f"{INTERNAL}/DCIM/Camera/broken.jpg", "").startswith("broken image") or \
        f"{INTERNAL}/DCIM/Camera/broken.jpg" in marked
    assert (await client.get(dev(phone, f"photos/thumbnail?path={q(summary.newest[1])}"))).status_code == 200

    # a phone file that a browser would run (HTML) is only ever sent as bytes to save
    page = phone_to_local(phone.home / "fs", f"{INTERNAL}/Download/page.html")
    page.write_text("<script>alert(1)</script>")
    response = await client.get(dev(phone, f"photos/original?path={q(f'{INTERNAL}/Download/page.html')}"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    # missing files and folders
    missing = await client.get(dev(phone, f"photos/original?path={q(f'{INTERNAL}/DCIM/none.jpg')}"))
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    folder = await client.get(dev(phone, f"photos/original?path={q(f'{INTERNAL}/DCIM')}"))
    assert folder.status_code == 409 and "is a folder" in folder.json()["error"]


async def test_phone_files_roots_folders_and_errors(rig) -> None:
    _, phone, client, _, _ = rig
    top = (await client.get(dev(phone, "phone-files"))).json()
    assert top["path"] is None
    assert top["roots"] == [{"path": INTERNAL, "name": "Internal shared storage"},
                            {"path": SD_CARD, "name": "SD card"}]
    assert [(e["name"], e["path"], e["is_dir"]) for e in top["entries"]] == [
        ("Internal shared storage", INTERNAL, True), ("SD card", SD_CARD, True)]

    reports = q(f"{INTERNAL}/Documents/Work/2026/Reports/")  # a trailing slash is fine
    work = (await client.get(dev(phone, f"phone-files?path={reports}"))).json()
    assert work["path"] == f"{INTERNAL}/Documents/Work/2026/Reports"
    names = [(e["name"], e["is_dir"]) for e in work["entries"]]
    assert names == [("Drafts", True), ("Q1 report.pdf", False), ("Q2 report.pdf", False)]
    report = work["entries"][1]
    assert report["path"] == f"{INTERNAL}/Documents/Work/2026/Reports/Q1 report.pdf"
    assert report["size"] == phone_to_local(phone.home / "fs", report["path"]).stat().st_size
    assert set(report) == {"name", "path", "size", "is_dir", "date"}

    missing = await client.get(dev(phone, f"phone-files?path={q(INTERNAL + '/No such folder')}"))
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    refused = await client.get(dev(phone, f"phone-files?path={q(INTERNAL + '/Android/data')}"))
    assert refused.status_code == 403 and "permission denied" in refused.json()["error"]


async def test_pull_lands_in_the_download_folder_with_dates_and_push_uploads(rig) -> None:
    _, phone, client, summary, tmp = rig
    fs = phone.home / "fs"
    wanted = summary.newest[:3]
    response = await client.post(dev(phone, "pull"), json={"paths": wanted})
    assert response.status_code == 200
    done = await finished(client, response.json()["transfers"])
    assert [t["state"] for t in done] == ["done"] * 3
    for path, transfer in zip(wanted, done, strict=True):
        landed = Path(transfer["path"])
        assert landed.parent == tmp / "dl"
        source = phone_to_local(fs, path)
        assert landed.read_bytes() == source.read_bytes()
        assert int(landed.stat().st_mtime) == int(source.stat().st_mtime)
    assert not [p for p in (tmp / "dl").iterdir() if p.name.startswith(".")]

    # push by local path
    local = tmp / "notes for the phone.txt"
    local.write_bytes(os.urandom(300_000))
    response = await client.post(dev(phone, "push"),
                                 json={"paths": [str(local)], "to": f"{INTERNAL}/Download"})
    assert response.status_code == 200
    [pushed] = await finished(client, response.json()["transfers"])
    assert pushed["state"] == "done" and pushed["direction"] == "out"
    remote = phone_to_local(fs, f"{INTERNAL}/Download/notes for the phone.txt")
    assert remote.read_bytes() == local.read_bytes()

    # upload from a browser: multipart, odd names, kept in HOME/outgoing only until sent
    files = [("files", ("café #1.txt", b"first")), ("files", ("100% sure.bin", os.urandom(70_000)))]
    response = await client.post(dev(phone, f"push/upload?to={q(INTERNAL + '/Documents')}"), files=files)
    assert response.status_code == 200, response.text
    ended = await finished(client, response.json()["transfers"])
    assert [t["state"] for t in ended] == ["done", "done"]
    for _, (name, data) in files:
        assert phone_to_local(fs, f"{INTERNAL}/Documents/{name}").read_bytes() == data
    outgoing = tmp / "home" / "outgoing"
    await wait_for(lambda: not outgoing.exists() or not any(outgoing.iterdir()), what="upload cleaned")

    # into a folder that does not exist: refused at once, nothing kept
    response = await client.post(dev(phone, f"push/upload?to={q(INTERNAL + '/Nope')}"),
                                 files={"files": ("x.txt", b"x")})
    assert response.status_code == 404
    assert not outgoing.exists() or not any(outgoing.iterdir())


# -- the route module's parsers (pure) --------------------------------------------------------------

NAME = st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=40)


@given(st.text(max_size=300))
def test_phone_path_is_absolute_and_normal_or_refused(value: str) -> None:
    try:
        path = phone_path(value)
    except HTTPException as exc:
        assert exc.status_code == 400
        return
    assert path.startswith("/") and "//" not in path and "\x00" not in path
    assert not {".", ".."} & set(path.split("/"))
    assert phone_path(path) == path  # normal already


@given(st.lists(NAME, max_size=6), st.booleans())
def test_phone_path_keeps_every_odd_name(parts: list[str], trailing: bool) -> None:
    value = "/" + "/".join(parts) + ("/" if trailing and parts else "")
    if {".", ".."} & set(parts):
        with pytest.raises(HTTPException):
            phone_path(value)
    else:
        assert phone_path(value) == "/" + "/".join(parts)


@given(st.text(max_size=300), st.sampled_from(["inline", "attachment"]))
def test_content_disposition_is_a_valid_header_naming_the_safe_file(name: str, kind: str) -> None:
    header = content_disposition(kind, name)
    header.encode("latin-1")  # a header value must be; the exact name rides in filename*
    assert header.startswith(f'{kind}; filename="') and "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert '"' not in fallback and "\\" not in fallback
    exact = header.rsplit("filename*=UTF-8''", 1)[1]
    assert unquote(exact) == safe_filename(name, "photo")


@given(st.one_of(st.none(), st.text(max_size=60)), st.text(max_size=60))
def test_served_type_is_a_picture_a_video_or_bytes(content_type: str | None, name: str) -> None:
    kind = served_type(content_type, name)
    assert kind in INLINE_TYPES or kind == "application/octet-stream" or (
        kind.split("/")[0] in ("video", "audio") and kind.isascii() and kind.strip() == kind
        and all(c.isalnum() or c in "/.+-" for c in kind))
    assert served_type("text/html", "x.html") == "application/octet-stream"
    assert served_type("image/svg+xml", "x.svg") == "application/octet-stream"
