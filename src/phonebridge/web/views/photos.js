// The Photos page: the phone's photos and videos, newest first, as a grid of thumbnails that loads
// as you scroll (grouped by month), a viewer (arrow keys, Escape, download), multi-select (checkbox,
// ctrl-click, shift-click) and "Download N"; and a "Phone files" tab that browses the phone's
// storage, downloads files and uploads new ones (drop them or pick them).
//
// Data: GET photos (pages), photos/thumbnail (only for tiles near the viewport: fetched with the
// token, shown as object URLs, revoked when they scroll far away or the page goes), photos/original
// (the viewer), POST pull (into the download folder, with the files' dates); GET phone-files and
// POST push/upload. Copies report progress as "transfer.changed" events.

import { getToken, upload } from "../lib/api.js";
import { fillDeviceSelect, h, pageIcons } from "../lib/ui.js";
import { formatBytes } from "./files.js";

// Icons this page needs beyond lib/ui.js's set.
const icon = pageIcons({
  play: '<path d="M8 5.5v13l11-6.5z" fill="currentColor" stroke="none"/>',
  download: '<path d="M12 4v11.5M7.5 11 12 15.5 16.5 11"/><path d="M4 17v1.5A1.5 1.5 0 0 0 5.5 20h13a1.5 1.5 0 0 0 1.5-1.5V17"/>',
  upload: '<path d="M12 15.5V4M7.5 8.5 12 4l4.5 4.5"/><path d="M4 15v3.5A1.5 1.5 0 0 0 5.5 20h13a1.5 1.5 0 0 0 1.5-1.5V15"/>',
  left: '<path d="m15 5-7 7 7 7"/>',
  right: '<path d="m9 5 7 7-7 7"/>',
  folder: '<path d="M3.5 6.5a2 2 0 0 1 2-2h4l2 2.5h7a2 2 0 0 1 2 2v8.5a2 2 0 0 1-2 2h-13a2 2 0 0 1-2-2z"/>',
  file: '<path d="M13.5 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8.5z"/><path d="M13.5 3v5.5H19"/>',
  film: '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M7 4v16M17 4v16M3 9h4M3 15h4M17 9h4M17 15h4"/>',
  broken: '<path d="M4 5h16v6l-3-2-3 3-2-2-4 4-4-2z"/><path d="M4 16.5V19h16v-5.5l-3 2.5-3-2-2 2"/>',
  storage: '<rect x="4" y="3" width="16" height="18" rx="2"/><path d="M8 7h8M8 11h8"/><circle cx="12" cy="16.5" r="1.2"/>',
});

const PAGE_SIZE = 120; // photos asked for per request
const MAX_PARALLEL = 6; // thumbnail requests at once (the browser's per-host limit)
const MAX_KEPT = 400; // thumbnail object URLs kept; older ones out of view are revoked
const NEAR = "400px 0px"; // how far outside the viewport a tile starts loading
const FINAL = new Set(["done", "failed", "cancelled"]);
const MAX_SEEN = 2000; // transfer events remembered (one pull may start many)

// -- formatting -------------------------------------------------------------------------------------

function monthKey(ms) {
  if (!ms) return "unknown";
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}`;
}

function monthLabel(ms) {
  if (!ms) return "Date unknown";
  return new Date(ms).toLocaleDateString([], { month: "long", year: "numeric" });
}

function dateTime(ms) {
  if (!ms) return "";
  return new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function folderOf(path) {
  if (!path) return "";
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : "/";
}

// -- requests -----------------------------------------------------------------------------------------

function authHeaders() {
  return { Authorization: `Bearer ${getToken()}` };
}

async function errorText(response, fallback) {
  try {
    const data = await response.json();
    if (data && typeof data.error === "string") return data.error;
    if (data && typeof data.detail === "string") return data.detail;
  } catch {
    // not JSON
  }
  return fallback;
}

// -- copy progress --------------------------------------------------------------------------------------

/**
 * Follows the transfers of pulls or pushes in a status line: a bar while they run, then what
 * happened, in the line and as a toast: `done(transfers)` ("Saved 3 files to ~/Downloads"), or
 * "N of M NOUNs failed" and which. `onDone(transfers)` once all ended.
 * `seen` holds the latest "transfer.changed" of every transfer: small files may be done before the
 * request that started them has answered.
 */
function progressLine(testid, seen, toast, { verb, noun, done, onDone = () => {} }) {
  const bar = h("span.progress-fill");
  const text = h("span.copy-text", {});
  const close = h("button.copy-close", {
    type: "button", hidden: true, "aria-label": "Dismiss", title: "Dismiss", onclick: () => reset(),
  }, icon("close"));
  const el = h("div.copy-status", { hidden: true, role: "status", dataset: { testid, state: "idle" } },
    h("div.progress", {}, bar), h("div.copy-line", {}, text, close));
  let batch = new Map(); // id -> transfer

  function render() {
    const list = [...batch.values()];
    if (!list.length) return;
    const size = list.reduce((s, t) => s + (t.size || 0), 0);
    const moved = list.reduce((s, t) => s + (t.state === "done" ? t.size : t.transferred || 0), 0);
    const ended = list.filter((t) => FINAL.has(t.state));
    const percent = size ? Math.round((moved / size) * 100) : ended.length === list.length ? 100 : 0;
    bar.style.width = `${percent}%`;
    el.hidden = false;
    close.hidden = ended.length < list.length;
    if (ended.length < list.length) {
      el.dataset.state = "active";
      text.textContent = `${verb} ${ended.length + 1} of ${plural(list.length, "file")} · ${percent}% `
        + `(${formatBytes(moved)} of ${formatBytes(size)})`;
      return;
    }
    const failed = list.filter((t) => t.state !== "done");
    if (!failed.length) bar.style.width = "100%"; // sizes reported late must not leave it short
    el.dataset.state = failed.length ? "failed" : "done";
    text.textContent = failed.length
      ? `${plural(list.length - failed.length, "file")} copied; ${failed.length} failed: `
        + failed.slice(0, 3).map((t) => `${t.name} (${t.error || t.state})`).join(", ")
      : done(list);
    batch = new Map();
    if (failed.length) toast(`${failed.length} of ${plural(list.length, noun)} failed`, "error");
    else toast(done(list), "success");
    onDone(list);
  }

  function reset() {
    batch = new Map();
    el.hidden = true;
    el.dataset.state = "idle";
  }

  return {
    el,
    reset,
    add(transfers) {
      for (const t of transfers) batch.set(t.id, seen.get(t.id) || t);
      render();
    },
    update(t) {
      if (!batch.has(t.id)) return;
      batch.set(t.id, t);
      render();
    },
  };
}

/** Downloads read the same in the photo grid and the phone-files tab. */
const DOWNLOADING = {
  verb: "Downloading",
  noun: "download",
  done: (list) => `Saved ${plural(list.length, "file")} to ${folderOf(list[0].path)}`,
};

// -- the page -------------------------------------------------------------------------------------------

export default {
  id: "photos",
  title: "Photos",
  icon: "photos",

  mount(root, ctx) {
    const { store, get, post, devicePath, toast, toastError } = ctx;
    let deviceId = null;
    let wasUsable = false;
    let tab = "photos";
    let generation = 0; // bumped when the device changes: answers for the old one are dropped
    const seenTransfers = new Map(); // id -> the latest "transfer.changed" data (a few hundred kept)

    // header and tabs -----------------------------------------------------------------------------
    const deviceSelect = h("select.device-select", {
      dataset: { testid: "photos-device" }, "aria-label": "Device",
      onchange: () => choose(deviceSelect.value),
    });
    const refreshButton = h("button.btn.btn-secondary", {
      type: "button", dataset: { testid: "photos-refresh" }, title: "Read the phone's folders again",
      onclick: () => (tab === "photos" ? resetPhotos(true) : retryFiles()),
    }, icon("refresh"), h("span", {}, "Refresh"));
    const summary = h("p.this-computer", { dataset: { testid: "photos-summary" } },
      "Your phone's camera, screenshots and pictures, newest first.");
    const tabButton = (id, label) => h("button.tab", {
      type: "button", role: "tab", dataset: { testid: `tab-${id}`, tab: id },
      onclick: () => showTab(id),
    }, label);
    const tabs = [tabButton("photos", "Photos"), tabButton("files", "Phone files")];
    root.append(h("header.page-header", {},
      h("div.page-heading", {}, h("h1", {}, "Photos"), summary),
      h("div.page-actions", {}, deviceSelect, refreshButton)),
    h("div.tabs", { role: "tablist", "aria-label": "Photos or phone files" }, ...tabs));

    // The one state box of both tabs: no phone, offline, refused, loading, empty.
    const stateBox = h("div.empty.photos-state", { hidden: true, dataset: { testid: "photos-state" } });
    root.append(stateBox);

    function showState(state, title, text, action) {
      stateBox.dataset.state = state;
      stateBox.replaceChildren(...[
        state === "loading" ? h("span.spinner", { "aria-hidden": "true" }) : null,
        h("strong", {}, title), text ? h("span", {}, ` ${text}`) : null,
        action ? h("div.state-action", {}, action) : null].filter(Boolean));
      stateBox.setAttribute("role", state === "error" ? "alert" : "status");
      stateBox.hidden = false;
    }

    function hideState() {
      stateBox.hidden = true;
      stateBox.dataset.state = "";
    }

    const retryButton = () => h("button.btn.btn-secondary.btn-small", {
      type: "button", dataset: { testid: "photos-retry" },
      onclick: () => (tab === "photos" ? resetPhotos(false) : retryFiles()),
    }, "Try again");

    // -- photos tab ------------------------------------------------------------------------------------
    const photos = { items: [], offset: 0, total: 0, loading: false, done: false, error: null, errors: [] };
    const records = new Map(); // tile element -> record {el, item, index, state, url, visible}
    const byPath = new Map(); // path -> record
    const queue = [];
    const kept = []; // records holding an object URL, least recently seen first
    const selected = new Set(); // paths
    let inFlight = 0;
    let anchor = null; // index of the last clicked tile, for shift-click
    let lastMonth = null;

    const grid = h("div.photo-grid", {
      role: "listbox", "aria-multiselectable": "true", "aria-label": "Photos and videos, newest first",
      dataset: { testid: "photo-grid" },
    });
    const sentinel = h("div.photo-sentinel", { dataset: { testid: "photos-more" } });
    const pageNote = h("p.hint.photo-note", { hidden: true, dataset: { testid: "photos-errors" } });

    const selCount = h("span.sel-count", { dataset: { testid: "selection-count" } });
    const downloadSelected = h("button.btn.btn-primary", {
      type: "button", dataset: { testid: "photos-download" },
      onclick: () => downloadPaths([...selected], { clear: true }),
    }, icon("download"), h("span", {}, "Download"));
    const clearSelection = h("button.btn.btn-secondary", {
      type: "button", dataset: { testid: "selection-clear" }, onclick: () => setSelection([]),
    }, "Clear");
    const selectionBar = h("div.selection-bar", { hidden: true, dataset: { testid: "selection-bar" } },
      selCount, h("span.sel-hint", {}, "Shift-click selects a range"), h("span.spacer"),
      clearSelection, downloadSelected);
    const downloads = progressLine("download-status", seenTransfers, toast, DOWNLOADING);
    const photosPane = h("section.photos-pane", { role: "tabpanel", dataset: { testid: "photos-pane" } },
      selectionBar, downloads.el, pageNote, grid, sentinel);

    const tileObserver = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const rec = records.get(entry.target);
        if (!rec) continue;
        rec.visible = entry.isIntersecting;
        if (!rec.visible) continue;
        if (rec.state === "idle" || rec.state === "error") want(rec);
        else if (rec.state === "loaded") touch(rec);
      }
      pump();
    }, { rootMargin: NEAR });
    const moreObserver = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadMore();
    }, { rootMargin: "900px 0px" });
    moreObserver.observe(sentinel);

    function thumbUrl(item) {
      const q = new URLSearchParams({ path: item.path, v: `${item.size}-${item.date}` });
      return `${devicePath(deviceId, "photos/thumbnail")}?${q}`;
    }

    function originalUrl(item) {
      return `${devicePath(deviceId, "photos/original")}?${new URLSearchParams({ path: item.path })}`;
    }

    function want(rec) {
      rec.state = "queued";
      queue.push(rec);
    }

    function pump() {
      while (inFlight < MAX_PARALLEL && queue.length) {
        const rec = queue.shift();
        if (rec.state !== "queued") continue;
        if (!rec.visible) { // scrolled past before its turn
          rec.state = "idle";
          continue;
        }
        fetchThumb(rec);
      }
    }

    function touch(rec) {
      const i = kept.indexOf(rec);
      if (i >= 0) kept.splice(i, 1);
      kept.push(rec);
    }

    function release(rec) {
      if (rec.url) URL.revokeObjectURL(rec.url);
      rec.url = null;
    }

    function evict() {
      while (kept.length > MAX_KEPT) {
        const i = kept.findIndex((r) => !r.visible);
        if (i < 0) break;
        const [rec] = kept.splice(i, 1);
        release(rec);
        setTile(rec, "idle");
      }
    }

    async function fetchThumb(rec) {
      const gen = generation;
      inFlight += 1;
      setTile(rec, "loading");
      try {
        const response = await fetch(thumbUrl(rec.item), { headers: authHeaders() });
        if (gen !== generation) return;
        if (response.ok) {
          const blob = await response.blob();
          if (gen !== generation) return;
          rec.url = URL.createObjectURL(blob);
          setTile(rec, "loaded");
          touch(rec);
          evict();
        } else if (response.status === 404) {
          setTile(rec, "no-preview");
        } else if (response.status === 422) {
          setTile(rec, "broken", await errorText(response, "broken image"));
        } else {
          setTile(rec, "error", await errorText(response, `HTTP ${response.status}`));
        }
      } catch {
        if (gen === generation) setTile(rec, "error", "Cannot reach the PhoneBridge daemon");
      } finally {
        inFlight -= 1;
        pump();
      }
    }

    function setTile(rec, state, reason = "") {
      rec.state = state;
      const { el, item } = rec;
      el.dataset.state = state;
      const media = el.querySelector(".photo-media");
      if (state === "loaded") {
        media.replaceChildren(h("img", { src: rec.url, alt: item.name, draggable: "false" }));
      } else if (state === "broken") {
        el.title = `${item.name}: ${reason}`;
        media.replaceChildren(h("span.tile-note.tile-broken", { dataset: { testid: "broken-tile" } },
          icon("broken"), h("span", {}, "Broken image"), h("small", {}, item.name)));
      } else if (state === "no-preview") {
        media.replaceChildren(h("span.tile-note", {}, icon(item.kind === "video" ? "film" : "file"),
          h("small", {}, item.name)));
      } else if (state === "error") {
        el.title = `${item.name}: ${reason}`;
        media.replaceChildren(h("span.tile-note", {}, icon("warning"), h("small", {}, "Could not load")));
      } else {
        media.replaceChildren();
      }
    }

    function makeTile(item, index) {
      const check = h("input.photo-check", {
        type: "checkbox", tabindex: "-1", "aria-label": `Select ${item.name}`,
        dataset: { testid: "photo-check" },
        onclick: (event) => {
          event.stopPropagation();
          select(index, event.shiftKey ? "range" : "toggle");
        },
      });
      const el = h("div.photo-tile", {
        role: "option", "aria-selected": "false", tabindex: "0", title: `${item.name} · ${dateTime(item.date)}`,
        "aria-label": `${item.kind === "video" ? "Video" : "Photo"} ${item.name}, ${dateTime(item.date)}`,
        dataset: { testid: "photo-tile", path: item.path, kind: item.kind, state: "idle", index: String(index) },
        onclick: (event) => {
          if (event.shiftKey) select(index, "range");
          else if (event.ctrlKey || event.metaKey || selected.size) select(index, "toggle");
          else openViewer(index);
        },
        onkeydown: (event) => {
          if (event.key === "Enter") openViewer(index);
          else if (event.key === " ") {
            event.preventDefault();
            select(index, event.shiftKey ? "range" : "toggle");
          }
        },
      },
      h("div.photo-media"),
      item.kind === "video" ? h("span.photo-play", { dataset: { testid: "video-badge" } }, icon("play")) : null,
      check);
      const rec = { el, item, index, state: "idle", url: null, visible: false };
      records.set(el, rec);
      byPath.set(item.path, rec);
      if (item.error) setTile(rec, "broken", item.error); // the gallery already knows
      if (selected.has(item.path)) paintSelected(rec, true);
      return rec;
    }

    function appendItems(items) {
      const added = [];
      for (const item of items) {
        if (byPath.has(item.path)) continue; // the list moved under us (a new photo): skip repeats
        const key = monthKey(item.date);
        if (key !== lastMonth) {
          lastMonth = key;
          // Each tile's label has its date, so the month headings are for the eye only.
          grid.append(h("h3.photo-group", { "aria-hidden": "true", dataset: { testid: "photo-group" } },
            monthLabel(item.date)));
        }
        photos.items.push(item);
        const rec = makeTile(item, photos.items.length - 1);
        grid.append(rec.el);
        added.push(rec);
      }
      for (const rec of added) tileObserver.observe(rec.el);
    }

    function renderPhotosSummary() {
      if (!photos.total) return;
      const videos = photos.items.filter((p) => p.kind === "video").length;
      summary.textContent = `${photos.total.toLocaleString()} photos and videos, newest first`
        + ` · ${photos.items.length.toLocaleString()} shown`
        + (videos ? ` (${plural(videos, "video")})` : "");
    }

    async function loadMore({ refresh = false } = {}) {
      if (tab !== "photos" || !deviceId || !usable() || photos.loading || photos.done || photos.error) return;
      photos.loading = true;
      const gen = generation;
      if (!photos.items.length) renderPhotos();
      sentinel.dataset.loading = "1";
      let failed = null;
      try {
        const q = new URLSearchParams({ offset: String(photos.offset), limit: String(PAGE_SIZE) });
        if (refresh) q.set("refresh", "1");
        const page = await get(`${devicePath(deviceId, "photos")}?${q}`);
        if (gen !== generation) return;
        const items = page.items || [];
        photos.total = page.total;
        photos.errors = page.errors || [];
        photos.offset += items.length;
        appendItems(items);
        photos.done = !items.length || photos.offset >= page.total;
      } catch (error) {
        if (gen !== generation) return;
        failed = error;
      } finally {
        if (gen === generation) {
          photos.loading = false;
          delete sentinel.dataset.loading;
        }
      }
      photos.error = failed;
      renderPhotos();
      // The sentinel may still be in range (a tall screen): the observer will not fire again.
      if (!failed && !photos.done) requestAnimationFrame(() => {
        if (gen === generation && isNear(sentinel)) loadMore();
      });
    }

    function isNear(el) {
      const rect = el.getBoundingClientRect();
      return rect.top < window.innerHeight + 900;
    }

    function renderPhotos() {
      if (tab !== "photos") return;
      renderPhotosSummary();
      if (!checkDevice()) return;
      photosPane.hidden = Boolean(photos.error && !photos.items.length);
      if (photos.error) {
        if (photos.items.length) {
          hideState();
          toastError(photos.error, "Could not load more photos");
          photos.error = null;
          photos.done = true;
          return;
        }
        showState("error", "The phone's photos could not be read:", photos.error.message, retryButton());
        return;
      }
      if (!photos.items.length && !photos.done) {
        showState("loading", "Loading photos from the phone…");
        return;
      }
      if (!photos.items.length && photos.done) {
        showState("empty", "No photos or videos on the phone.",
          "Pictures in DCIM, Pictures and Movies show up here.");
        return;
      }
      hideState();
      const problems = photos.errors.length;
      pageNote.hidden = !problems;
      pageNote.textContent = problems
        ? `Not everything on the phone could be read: ${photos.errors.slice(0, 3)
          .map((e) => (e.path ? `${e.path} (${e.reason})` : e.reason)).join(", ")}` : "";
    }

    function resetPhotos(refresh) {
      clearPhotos();
      if (checkDevice()) loadMore({ refresh });
    }

    // selection --------------------------------------------------------------------------------------
    function paintSelected(rec, on) {
      rec.el.classList.toggle("selected", on);
      rec.el.setAttribute("aria-selected", on ? "true" : "false");
      rec.el.querySelector(".photo-check").checked = on;
    }

    function select(index, how) {
      const item = photos.items[index];
      if (!item) return;
      if (how === "range" && anchor !== null) {
        const [from, to] = anchor < index ? [anchor, index] : [index, anchor];
        for (let i = from; i <= to; i += 1) selected.add(photos.items[i].path);
      } else if (selected.has(item.path)) {
        selected.delete(item.path);
      } else {
        selected.add(item.path);
      }
      anchor = index;
      renderSelection();
    }

    function setSelection(paths) {
      selected.clear();
      for (const p of paths) selected.add(p);
      renderSelection();
    }

    function renderSelection() {
      for (const rec of records.values()) {
        const on = selected.has(rec.item.path);
        if (rec.el.classList.contains("selected") !== on) paintSelected(rec, on);
      }
      const n = selected.size;
      selectionBar.hidden = n === 0;
      grid.classList.toggle("selecting", n > 0);
      selCount.textContent = `${plural(n, "item")} selected`;
      downloadSelected.querySelector("span").textContent = `Download ${n}`;
    }

    async function downloadPaths(paths, { clear = false } = {}) {
      if (!paths.length || !deviceId) return;
      const what = paths.length === 1 ? paths[0].split("/").pop() : plural(paths.length, "file");
      try {
        const result = await post(devicePath(deviceId, "pull"), { paths });
        downloads.add(result.transfers || []);
        if (clear) setSelection([]);
      } catch (error) {
        toastError(error, `Download ${what}`);
      }
    }

    // viewer -----------------------------------------------------------------------------------------
    const viewer = { index: -1, url: null, gen: 0 };
    const viewerName = h("h2.viewer-name", { dataset: { testid: "viewer-name" } });
    const viewerMeta = h("p.viewer-meta", { dataset: { testid: "viewer-meta" } });
    const viewerStage = h("div.viewer-stage", { dataset: { testid: "viewer-stage" } });
    const prevButton = h("button.viewer-nav.viewer-prev", {
      type: "button", "aria-label": "Previous", title: "Previous (←)", dataset: { testid: "viewer-prev" },
      onclick: () => step(-1),
    }, icon("left"));
    const nextButton = h("button.viewer-nav.viewer-next", {
      type: "button", "aria-label": "Next", title: "Next (→)", dataset: { testid: "viewer-next" },
      onclick: () => step(1),
    }, icon("right"));
    const viewerDownload = h("button.btn.btn-primary.btn-small", {
      type: "button", dataset: { testid: "viewer-download" },
      onclick: () => {
        const item = photos.items[viewer.index];
        if (item) downloadPaths([item.path]);
      },
    }, icon("download"), h("span", {}, "Download"));
    const viewerClose = h("button.viewer-close", {
      type: "button", "aria-label": "Close", title: "Close (Esc)", dataset: { testid: "viewer-close" },
      onclick: () => closeViewer(),
    }, icon("close"));
    const viewerEl = h("div.viewer", {
      hidden: true, role: "dialog", "aria-modal": "true", "aria-label": "Photo viewer",
      dataset: { testid: "viewer" },
      onclick: (event) => {
        if (event.target === viewerEl || event.target === viewerStage) closeViewer();
      },
    },
    h("div.viewer-bar", {}, h("div.viewer-info", {}, viewerName, viewerMeta),
      h("div.viewer-actions", {}, viewerDownload, viewerClose)),
    h("div.viewer-body", {}, prevButton, viewerStage, nextButton));
    function releaseViewer() {
      if (viewer.url) URL.revokeObjectURL(viewer.url);
      viewer.url = null;
    }

    async function openViewer(index) {
      const item = photos.items[index];
      if (!item) return;
      viewer.index = index;
      viewer.gen += 1;
      const gen = viewer.gen;
      releaseViewer();
      viewerEl.hidden = false;
      viewerEl.dataset.path = item.path;
      viewerEl.dataset.state = "loading";
      viewerName.textContent = item.name;
      const dims = item.width && item.height ? `${item.width} × ${item.height}` : "";
      viewerMeta.textContent = [dateTime(item.date), formatBytes(item.size), dims, folderOf(item.path)]
        .filter(Boolean).join(" · ");
      prevButton.disabled = index === 0;
      nextButton.disabled = photos.done && index >= photos.items.length - 1;
      viewerStage.replaceChildren(h("span.spinner", { "aria-label": "Loading" }));
      document.body.classList.add("viewer-open");
      viewerClose.focus();
      try {
        const response = await fetch(originalUrl(item), { headers: authHeaders() });
        if (gen !== viewer.gen) return;
        if (!response.ok) throw new Error(await errorText(response, `HTTP ${response.status}`));
        const blob = await response.blob();
        if (gen !== viewer.gen) return;
        viewer.url = URL.createObjectURL(blob);
        const media = item.kind === "video"
          ? h("video.viewer-media", { src: viewer.url, controls: true, autoplay: true, dataset: { testid: "viewer-video" } })
          : h("img.viewer-media", { src: viewer.url, alt: item.name, dataset: { testid: "viewer-image" } });
        if (item.kind !== "video") {
          media.addEventListener("error", () => {
            if (gen !== viewer.gen) return;
            viewerEl.dataset.state = "broken";
            viewerStage.replaceChildren(h("div.viewer-broken", { dataset: { testid: "viewer-broken" } },
              icon("broken"), h("strong", {}, "Broken image"),
              h("span", {}, "The file on the phone is not a picture this browser can show.")));
          });
          media.addEventListener("load", () => {
            if (gen === viewer.gen) viewerEl.dataset.state = "loaded";
          });
        } else {
          viewerEl.dataset.state = "loaded";
        }
        viewerStage.replaceChildren(media);
      } catch (error) {
        if (gen !== viewer.gen) return;
        viewerEl.dataset.state = "error";
        viewerStage.replaceChildren(h("div.viewer-broken", { dataset: { testid: "viewer-error" } },
          icon("warning"), h("strong", {}, "Could not open this file"), h("span", {}, error.message)));
      }
    }

    async function step(delta) {
      if (viewer.index < 0) return;
      const next = viewer.index + delta;
      if (next < 0) return;
      if (next >= photos.items.length) {
        if (photos.done) return;
        await loadMore();
        if (next >= photos.items.length) return;
      }
      const rec = byPath.get(photos.items[next].path);
      if (rec) rec.el.scrollIntoView({ block: "nearest" });
      openViewer(next);
    }

    function closeViewer() {
      if (viewerEl.hidden) return;
      viewer.gen += 1;
      const rec = viewer.index >= 0 ? byPath.get(photos.items[viewer.index]?.path) : null;
      viewer.index = -1;
      releaseViewer();
      viewerStage.replaceChildren();
      viewerEl.hidden = true;
      document.body.classList.remove("viewer-open");
      if (rec) rec.el.focus({ preventScroll: true });
    }

    function onKey(event) {
      if (viewerEl.hidden) return;
      if (event.key === "Escape") closeViewer();
      else if (event.key === "ArrowLeft") step(-1);
      else if (event.key === "ArrowRight") step(1);
      else return;
      event.preventDefault();
    }
    document.addEventListener("keydown", onKey);

    // -- phone files tab -------------------------------------------------------------------------------
    const files = { path: null, roots: [], entries: [], loaded: false, loading: false, error: null, gen: 0 };
    const fileSelection = new Set();
    const crumbs = h("nav.breadcrumb", { "aria-label": "Folder", dataset: { testid: "pf-breadcrumb" } });
    const fileInput = h("input.visually-hidden", {
      type: "file", multiple: true, dataset: { testid: "pf-file-input" },
      onchange: () => {
        if (fileInput.files && fileInput.files.length) uploadFiles([...fileInput.files]);
        fileInput.value = "";
      },
    });
    const uploadButton = h("button.btn.btn-secondary", {
      type: "button", dataset: { testid: "pf-upload" }, onclick: () => fileInput.click(),
    }, icon("upload"), h("span", {}, "Upload"));
    const downloadFiles = h("button.btn.btn-primary", {
      type: "button", hidden: true, dataset: { testid: "pf-download" },
      onclick: () => pullFiles([...fileSelection]),
    }, icon("download"), h("span", {}, "Download"));
    const list = h("div.pf-list", { role: "list", dataset: { testid: "pf-list" } });
    const listNote = h("div.empty.pf-note", { hidden: true, dataset: { testid: "pf-note" } });
    const uploadBar = h("span.progress-fill");
    const uploadProgress = h("div.copy-status", { hidden: true, dataset: { testid: "pf-upload-status" } },
      h("div.progress", {}, uploadBar), h("span.copy-text", {}));
    const pushes = progressLine("pf-push-status", seenTransfers, toast, {
      verb: "Uploading",
      noun: "upload",
      done: (done) => `Uploaded ${plural(done.length, "file")} to the phone`,
      onDone: () => {
        if (files.path) loadDir(files.path, { quiet: true });
      },
    });
    const pulls = progressLine("pf-pull-status", seenTransfers, toast, DOWNLOADING);
    const dropHint = h("div.drop-hint", { "aria-hidden": "true" }, icon("upload"),
      h("span", { dataset: { testid: "pf-drop-text" } }, "Drop files to upload them here"));
    const filesPane = h("section.files-pane.panel", {
      role: "tabpanel", hidden: true, dataset: { testid: "files-pane" },
      ondragenter: (event) => dragOver(event),
      ondragover: (event) => dragOver(event),
      ondragleave: (event) => {
        if (!filesPane.contains(event.relatedTarget)) filesPane.classList.remove("drag-over");
      },
      ondrop: (event) => {
        event.preventDefault();
        filesPane.classList.remove("drag-over");
        const dropped = event.dataTransfer ? [...event.dataTransfer.files] : [];
        if (dropped.length) uploadFiles(dropped);
      },
    },
    h("div.pf-toolbar", {}, crumbs, h("span.spacer"), fileInput, uploadButton, downloadFiles),
    uploadProgress, pushes.el, pulls.el, listNote, list, dropHint);

    function dragOver(event) {
      event.preventDefault();
      const ok = Boolean(files.path);
      if (event.dataTransfer) event.dataTransfer.dropEffect = ok ? "copy" : "none";
      filesPane.classList.toggle("drag-over", ok);
    }

    function rootOf(path) {
      return files.roots.filter((r) => path === r.path || path.startsWith(`${r.path}/`))
        .sort((a, b) => b.path.length - a.path.length)[0];
    }

    function renderCrumbs() {
      const parts = [{ label: "Phone", path: null }];
      if (files.path) {
        const base = rootOf(files.path);
        let at = base ? base.path : "";
        if (base) parts.push({ label: base.name, path: base.path });
        const rest = files.path.slice(at.length).split("/").filter(Boolean);
        for (const name of rest) {
          at = `${at}/${name}`;
          parts.push({ label: name, path: at });
        }
      }
      crumbs.replaceChildren(...parts.flatMap((p, i) => {
        const last = i === parts.length - 1;
        const el = last
          ? h("span.crumb.current", { "aria-current": "location", dataset: { testid: "pf-crumb" } }, p.label)
          : h("button.crumb", { type: "button", dataset: { testid: "pf-crumb" }, onclick: () => loadDir(p.path) }, p.label);
        return i ? [h("span.crumb-sep", { "aria-hidden": "true" }, "›"), el] : [el];
      }));
    }

    function entryRow(e) {
      const atRoots = files.path === null;
      const check = e.is_dir ? h("span.pf-check-space") : h("input.pf-check", {
        type: "checkbox", "aria-label": `Select ${e.name}`, checked: fileSelection.has(e.path),
        dataset: { testid: "pf-check" },
        onchange: () => {
          if (check.checked) fileSelection.add(e.path);
          else fileSelection.delete(e.path);
          renderFileSelection();
        },
      });
      const name = e.is_dir
        ? h("button.pf-name.pf-open", { type: "button", dataset: { testid: "pf-open" }, onclick: () => loadDir(e.path) },
          e.name)
        : h("span.pf-name", { title: e.path }, e.name);
      return h("div.pf-row", {
        role: "listitem",
        dataset: { testid: "pf-entry", name: e.name, path: e.path, dir: e.is_dir ? "1" : "" },
      },
      check,
      h(`span.pf-icon${e.is_dir ? ".is-dir" : ""}`, {}, icon(atRoots ? "storage" : e.is_dir ? "folder" : "file")),
      h("span.pf-main", {}, name, atRoots ? h("small.pf-sub", {}, e.path) : null),
      h("span.pf-size", {}, e.is_dir ? "" : formatBytes(e.size)),
      h("span.pf-date", {}, dateTime(e.date)),
      h("span.pf-actions", {}, e.is_dir ? null : h("button.btn.btn-secondary.btn-small", {
        type: "button", dataset: { testid: "pf-get" }, title: `Download ${e.name}`,
        onclick: () => pullFiles([e.path]),
      }, icon("download"), h("span", {}, "Download"))));
    }

    function renderFiles() {
      renderCrumbs();
      list.replaceChildren(...files.entries.map(entryRow));
      uploadButton.disabled = !files.path;
      uploadButton.title = files.path ? `Upload files into ${files.path}` : "Open a folder to upload into it";
      if (files.loaded && !files.entries.length) {
        listNote.replaceChildren(...[
          h("strong", {}, files.path ? "This folder is empty." : "The phone shares no storage."),
          files.path ? h("span", {}, " Drop files here to upload them.") : null].filter(Boolean));
        listNote.hidden = false;
        listNote.dataset.state = "empty";
      } else {
        listNote.hidden = true;
      }
      renderFileSelection();
    }

    function renderFileSelection() {
      for (const p of [...fileSelection]) {
        if (!files.entries.some((e) => e.path === p)) fileSelection.delete(p);
      }
      const n = fileSelection.size;
      downloadFiles.hidden = n === 0;
      downloadFiles.querySelector("span").textContent = `Download ${n}`;
    }

    async function loadDir(path, { quiet = false } = {}) {
      if (!deviceId || !usable()) return;
      files.gen += 1;
      const gen = files.gen;
      files.loading = true;
      if (!quiet) {
        listNote.replaceChildren(h("span.spinner", { "aria-hidden": "true" }), h("strong", {}, "Reading the folder…"));
        listNote.dataset.state = "loading";
        listNote.hidden = false;
      }
      const q = path ? `?${new URLSearchParams({ path })}` : "";
      try {
        const listing = await get(`${devicePath(deviceId, "phone-files")}${q}`);
        if (gen !== files.gen) return;
        if (path !== files.path) fileSelection.clear();
        Object.assign(files, { path: listing.path, roots: listing.roots || [], entries: listing.entries || [],
          loaded: true, error: null });
        listNote.removeAttribute("role");
        renderTab();
      } catch (error) {
        if (gen !== files.gen) return;
        if (!files.loaded) {
          files.error = error;
          renderTab();
          return;
        }
        // Stay where we were and say why the folder did not open (e.g. permission denied).
        listNote.replaceChildren(h("strong", {}, `${path || "The phone"}: `), h("span", {}, error.message));
        listNote.dataset.state = "error";
        listNote.hidden = false;
        listNote.setAttribute("role", "alert");
      } finally {
        if (gen === files.gen) files.loading = false;
      }
    }

    async function pullFiles(paths) {
      if (!paths.length || !deviceId) return;
      try {
        const result = await post(devicePath(deviceId, "pull"), { paths });
        pulls.add(result.transfers || []);
        fileSelection.clear();
        for (const box of list.querySelectorAll(".pf-check")) box.checked = false;
        renderFileSelection();
      } catch (error) {
        toastError(error, "Download");
      }
    }

    async function uploadFiles(chosen) {
      const target = files.path;
      if (!target || !deviceId) {
        toast("Open a folder of the phone first, then drop files into it", "error");
        return;
      }
      const total = chosen.reduce((s, f) => s + f.size, 0);
      const what = chosen.length === 1 ? chosen[0].name : plural(chosen.length, "file");
      const text = uploadProgress.querySelector(".copy-text");
      uploadProgress.hidden = false;
      uploadBar.style.width = "0%";
      text.textContent = `Sending ${what} (${formatBytes(total)}) to the daemon…`;
      uploadButton.disabled = true;
      try {
        const path = `${devicePath(deviceId, "push/upload")}?${new URLSearchParams({ to: target })}`;
        const result = await upload(path, chosen, (sent, size) => {
          const percent = size ? Math.round((sent / size) * 100) : 100;
          uploadBar.style.width = `${percent}%`;
          text.textContent = `Sending ${what} to the daemon: ${percent}%`;
        });
        uploadProgress.hidden = true;
        pushes.add((result && result.transfers) || []);
      } catch (error) {
        uploadProgress.hidden = true;
        toastError(error, `Upload ${what}`);
      } finally {
        uploadButton.disabled = !files.path;
      }
    }

    // -- device and tabs -------------------------------------------------------------------------------
    root.append(photosPane, filesPane, viewerEl);

    function usable() {
      const device = deviceId ? store.device(deviceId) : null;
      return Boolean(device && device.paired && device.reachable);
    }

    /** Show why nothing can be read (no phone, offline, no storage sharing); true when usable. */
    function checkDevice() {
      if (!store.loaded) {
        showState("loading", "Loading…");
        return false;
      }
      const device = deviceId ? store.device(deviceId) : null;
      if (!device || !device.paired) {
        showState("no-device", "No paired phone.", "Pair one on the Devices page to see its photos and files here.");
        return false;
      }
      if (!device.reachable) {
        showState("offline", `${device.name} is not reachable.`,
          "Its photos and files show here once it is connected again (same network, KDE Connect open).");
        return false;
      }
      if (Array.isArray(device.plugins) && device.plugins.length && !device.plugins.includes("sftp")) {
        showState("no-sftp", `${device.name} does not share its storage.`,
          "Turn on \u201cFilesystem expose\u201d for this computer in KDE Connect on the phone.");
        return false;
      }
      return true;
    }

    function showTab(id) {
      tab = id;
      for (const b of tabs) {
        const on = b.dataset.tab === id;
        b.classList.toggle("active", on);
        b.setAttribute("aria-selected", on ? "true" : "false");
      }
      renderTab();
    }

    /** Show the current tab as its data stands; fetch only what was never asked for. */
    function renderTab() {
      const ok = checkDevice();
      photosPane.hidden = !ok || tab !== "photos";
      filesPane.hidden = !ok || tab !== "files";
      if (!ok) return;
      if (tab === "photos") {
        if (!photos.items.length && !photos.loading && !photos.done && !photos.error) loadMore();
        else renderPhotos();
        return;
      }
      if (files.error) {
        filesPane.hidden = true;
        showState("error", "The phone's storage could not be opened:", files.error.message, retryButton());
      } else if (!files.loaded) {
        if (!files.loading) loadDir(files.path);
        hideState();
      } else {
        hideState();
        renderFiles();
      }
    }

    function retryFiles() {
      files.error = null;
      renderTab();
      if (files.loaded) loadDir(files.path);
    }

    function choose(id) {
      if (id === deviceId) return;
      deviceId = id || null;
      wasUsable = usable();
      Object.assign(files, { path: null, roots: [], entries: [], loaded: false, loading: false, error: null });
      files.gen += 1;
      fileSelection.clear();
      downloads.reset();
      pushes.reset();
      pulls.reset();
      list.replaceChildren();
      clearPhotos();
      renderTab();
    }

    function clearPhotos() {
      generation += 1;
      for (const rec of records.values()) release(rec);
      tileObserver.disconnect();
      records.clear();
      byPath.clear();
      queue.length = 0;
      kept.length = 0;
      Object.assign(photos, { items: [], offset: 0, total: 0, loading: false, done: false, error: null,
        errors: [] });
      lastMonth = null;
      anchor = null;
      grid.replaceChildren();
      pageNote.hidden = true;
      setSelection([]);
      closeViewer();
      summary.textContent = "Your phone's camera, screenshots and pictures, newest first.";
    }

    function renderDevices() {
      const devices = fillDeviceSelect(deviceSelect, store, deviceId);
      if (!devices.some((d) => d.id === deviceId)) { // none yet, or ours was unpaired
        choose(devices.length ? devices[0].id : null);
        return;
      }
      const now = usable();
      if (now && !wasUsable) { // connected again: read again what failed meanwhile
        photos.error = null;
        if (!photos.items.length) photos.done = false;
        files.error = null;
      }
      wasUsable = now;
      renderTab();
    }

    const unsubscribe = store.subscribe((what) => {
      if (what === "devices") renderDevices();
    });
    showTab("photos");
    renderDevices();

    return {
      onEvent(event) {
        if (event.type === "transfer.changed" && event.data && event.data.id) {
          seenTransfers.delete(event.data.id);
          seenTransfers.set(event.data.id, event.data);
          if (seenTransfers.size > MAX_SEEN) seenTransfers.delete(seenTransfers.keys().next().value);
          downloads.update(event.data);
          pulls.update(event.data);
          pushes.update(event.data);
        }
      },
      unmount() {
        unsubscribe();
        generation += 1;
        tileObserver.disconnect();
        moreObserver.disconnect();
        for (const rec of records.values()) release(rec);
        releaseViewer();
        document.removeEventListener("keydown", onKey);
        document.body.classList.remove("viewer-open");
      },
    };
  },
};
