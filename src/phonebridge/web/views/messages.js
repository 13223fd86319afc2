// The Messages page: the phone's text threads (names from its contacts, snippets, unread marks),
// one thread as bubbles (group participants, attachment thumbnails opened on demand), a compose
// box that shows the send state until the phone confirms, a search with highlighted hits, and the
// sync state. Live: "messages.changed" and "sync.progress" events re-read what changed.

import { getToken } from "../lib/api.js";
import { fillDeviceSelect, h, icon } from "../lib/ui.js";

const PAGE = 200; // messages shown per thread at first (more on demand)
const RELOAD_DEBOUNCE_MS = 250;
const blobUrls = new Map(); // url -> Promise<blob URL | null>, for the page's lifetime

function authedBlob(url) {
  if (!blobUrls.has(url)) {
    // <img> cannot send the API token: fetch with it and show a blob URL.
    blobUrls.set(url, fetch(url, { headers: { Authorization: `Bearer ${getToken()}` } })
      .then((r) => (r.ok ? r.blob() : null))
      .then((blob) => (blob ? URL.createObjectURL(blob) : null))
      .catch(() => null));
  }
  return blobUrls.get(url);
}

function timeText(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  if (date.toDateString() === new Date().toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const opts = { month: "short", day: "numeric" };
  if (date.getFullYear() !== new Date().getFullYear()) opts.year = "numeric";
  return date.toLocaleDateString([], opts);
}

/** "[hit] rest" from the search snippet -> text with <mark> elements (never HTML). */
function highlighted(snippet) {
  const out = [];
  const re = /\[([^\]]*)\]/g;
  let last = 0;
  let match;
  while ((match = re.exec(snippet))) {
    if (match.index > last) out.push(snippet.slice(last, match.index));
    out.push(h("mark", {}, match[1]));
    last = re.lastIndex;
  }
  if (last < snippet.length) out.push(snippet.slice(last));
  return out;
}

function initials(name) {
  const letters = name.trim().split(/\s+/).map((w) => [...w][0] || "").join("");
  return [...letters].slice(0, 2).join("").toUpperCase() || "#";
}

export default {
  id: "messages",
  title: "Messages",
  icon: "messages",

  mount(root, ctx) {
    const { store, get, post, devicePath, toast, toastError } = ctx;
    let deviceId = null;
    let threads = [];
    let threadId = null;
    let messages = [];
    let limit = PAGE;
    let results = null;
    let reloadTimer = null;
    const pending = []; // {id, addresses, body, state} sent from here, shown until confirmed

    // header -------------------------------------------------------------------------------------
    const deviceSelect = h("select.device-select", {
      dataset: { testid: "messages-device" }, "aria-label": "Device",
      onchange: () => choose(deviceSelect.value),
    });
    const searchInput = h("input.search-input", {
      type: "search", placeholder: "Search messages…", "aria-label": "Search messages",
      dataset: { testid: "messages-search" }, autocomplete: "off",
      oninput: () => scheduleSearch(),
    });
    const searchForm = h("form.search-form", { onsubmit: (e) => { e.preventDefault(); search(); }, role: "search" },
      searchInput);
    const syncLine = h("p.this-computer", { dataset: { testid: "sync-state" } }, "");
    const header = h("header.page-header", {},
      h("div.page-heading", {}, h("h1", {}, "Messages"), syncLine),
      h("div.page-actions", {}, deviceSelect, searchForm));

    const threadList = h("ul.thread-list", { dataset: { testid: "thread-list" }, role: "list" });
    const resultsList = h("ul.thread-list.search-hits", { dataset: { testid: "message-results" }, hidden: true });
    const listEmpty = h("div.empty", { hidden: true });
    const convHead = h("div.conv-head", { dataset: { testid: "conversation-head" } });
    const bubbles = h("div.bubbles", { dataset: { testid: "bubbles" } });
    const moreButton = h("button.btn.btn-ghost.load-more", { type: "button", hidden: true,
      onclick: () => { limit *= 4; loadThread(); } }, "Load earlier messages");
    const composeText = h("textarea.compose-text", {
      rows: 1, placeholder: "Text message", "aria-label": "Message", dataset: { testid: "compose-text" },
      dir: "auto",
      onkeydown: (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } },
    });
    const fileInput = h("input", { type: "file", hidden: true, dataset: { testid: "compose-file" },
      onchange: () => { attachName.textContent = fileInput.files[0] ? fileInput.files[0].name : ""; } });
    const attachName = h("span.attach-name", {});
    const sendButton = h("button.btn.btn-primary", { type: "submit", dataset: { testid: "compose-send" } }, "Send");
    const compose = h("form.compose", { onsubmit: (e) => { e.preventDefault(); send(); } },
      h("button.btn.btn-ghost.attach", { type: "button", title: "Attach a file", "aria-label": "Attach a file",
        onclick: () => fileInput.click() }, "📎"),
      fileInput, composeText, attachName, sendButton);
    const conversation = h("section.conversation", { hidden: true }, convHead, moreButton, bubbles, compose);
    const placeholder = h("div.empty.conv-placeholder", {}, h("strong", {}, "Choose a conversation"),
      h("span", {}, " to read it and reply."));
    root.append(header, h("div.messages-layout", {},
      h("nav.threads-pane", { "aria-label": "Conversations" }, listEmpty, resultsList, threadList),
      h("div.conversation-pane", {}, placeholder, conversation)));

    // devices ------------------------------------------------------------------------------------------
    function renderDevices() {
      const devices = fillDeviceSelect(deviceSelect, store, deviceId);
      if (!deviceId && devices.length) choose(devices[0].id);
      if (!devices.length) {
        listEmpty.replaceChildren(h("strong", {}, "No paired phone."),
          h("span", {}, " Pair one on the Devices page to read its texts here."));
        listEmpty.hidden = false;
      }
    }

    async function choose(id) {
      deviceId = id;
      threadId = null;
      conversation.hidden = true;
      placeholder.hidden = false;
      await Promise.all([loadThreads(), loadSync()]);
    }

    // sync state ------------------------------------------------------------------------------------------
    function renderSync(s) {
      if (!s) return;
      const words = { syncing: "Syncing…", synced: "Up to date", incomplete: "Partly synced",
        offline: "Phone offline", idle: "" };
      syncLine.textContent = `${words[s.state] ?? s.state} · ${s.messages.toLocaleString()} messages in `
        + `${s.threads.toLocaleString()} conversations (${s.threads_complete} complete)`;
      syncLine.dataset.state = s.state;
    }

    async function loadSync() {
      if (!deviceId) return;
      try {
        renderSync(await get(devicePath(deviceId, "sync")));
      } catch (error) {
        /* the device list shows why */
      }
    }

    // threads ---------------------------------------------------------------------------------------------
    function avatar(t) {
      const el = h("span.avatar", { "aria-hidden": "true", dataset: { group: t.is_group ? "1" : "" } },
        t.is_group ? icon("messages") : initials(t.names[0] || ""));
      const uid = t.contacts && t.contacts.find((c) => c);
      if (!t.is_group && uid) {
        authedBlob(devicePath(deviceId, `contacts/${encodeURIComponent(uid)}/photo`)).then((url) => {
          if (url) el.replaceChildren(h("img", { src: url, alt: "" }));
        });
      }
      return el;
    }

    function threadItem(t) {
      const title = t.names.join(", ");
      return h("li", {},
        h("button.thread-item", {
          type: "button", dataset: { testid: "thread", thread: String(t.thread_id), unread: t.unread ? "1" : "" },
          "aria-current": t.thread_id === threadId ? "true" : "false",
          onclick: () => openThread(t.thread_id),
        },
        avatar(t),
        h("span.thread-text", {},
          h("span.thread-top", {},
            h("span.thread-name", { dir: "auto", title: t.addresses.join(", ") }, title),
            h("span.thread-date", {}, timeText(t.date))),
          h("span.thread-bottom", {},
            h("span.thread-snippet", { dir: "auto" }, t.snippet || "📎 Attachment"),
            t.unread ? h("span.unread-badge", { dataset: { testid: "unread" }, title: `${t.unread} unread` },
              String(t.unread)) : null))));
    }

    function renderThreads() {
      threadList.replaceChildren(...threads.map(threadItem));
      listEmpty.hidden = threads.length > 0;
      if (!threads.length && deviceId) {
        listEmpty.replaceChildren(h("strong", {}, "No texts yet."),
          h("span", {}, " They appear here as the phone sends them."));
      }
    }

    async function loadThreads() {
      if (!deviceId) return;
      const id = deviceId;
      try {
        const list = await get(devicePath(id, "messages"));
        if (id !== deviceId) return;
        threads = list;
        renderThreads();
        if (threadId !== null) renderHead();
      } catch (error) {
        toastError(error, "Could not load the conversations");
      }
    }

    // one thread --------------------------------------------------------------------------------------
    function renderHead() {
      const t = threads.find((x) => x.thread_id === threadId);
      if (!t) return;
      const people = t.names.map((name, i) => h("span.participant", { dir: "auto", title: t.addresses[i] },
        name === t.addresses[i] ? name : `${name} (${t.addresses[i]})`));
      convHead.replaceChildren(avatar(t), h("div", {},
        h("h2.conv-title", { dir: "auto" }, t.names.join(", ")),
        h("p.conv-people", { dataset: { testid: "participants" } },
          t.is_group ? `Group · ${t.names.length} people: ` : "", ...people.flatMap((p, i) => (i ? [", ", p] : [p]))),
        t.complete ? null : h("p.hint", {}, "Older messages are still being fetched from the phone.")));
    }

    function attachmentEl(m, a) {
      const base = devicePath(deviceId, `messages/attachments/${m.id}/${a.part_id}`);
      const open = async () => {
        toast(`Fetching ${a.name} from the phone…`);
        const url = await authedBlob(base);
        if (url) window.open(url, "_blank", "noopener");
        else toast("The phone did not send the attachment.", "error");
      };
      const el = h("button.attachment", { type: "button", title: a.name, onclick: open,
        dataset: { testid: "attachment" } }, a.mime_type.startsWith("image/") ? "🖼️" : "📎");
      if (a.has_thumbnail) {
        authedBlob(`${base}/thumbnail`).then((url) => {
          if (!url) return;
          const img = h("img", { src: url, alt: a.name });
          // Keep the newest message in view when a thumbnail above it grows the list.
          img.addEventListener("load", () => {
            if (bubbles.scrollHeight - bubbles.scrollTop - bubbles.clientHeight < 200) {
              bubbles.scrollTop = bubbles.scrollHeight;
            }
          });
          el.replaceChildren(img);
        });
      }
      return el;
    }

    function bubble(m, t) {
      const cls = m.outgoing ? "bubble.out" : "bubble.in";
      const nameOf = (address) => {
        const i = t ? t.addresses.indexOf(address) : -1;
        return i >= 0 ? t.names[i] : address;
      };
      const status = m.status === "pending" ? "Sending…" : m.status === "failed" ? "Not sent" : "";
      return h(`div.${cls}`, { dataset: { testid: "bubble", status: m.status } },
        t && t.is_group && !m.outgoing && m.sender ? h("span.bubble-sender", { dir: "auto" }, nameOf(m.sender)) : null,
        m.attachments.length ? h("div.attachments", {}, ...m.attachments.map((a) => attachmentEl(m, a))) : null,
        m.body ? h("span.bubble-text", { dir: "auto" }, m.body) : null,
        h("span.bubble-meta", {}, timeText(m.date), status ? h("strong.bubble-status", {}, ` · ${status}`) : null));
    }

    function renderMessages() {
      const t = threads.find((x) => x.thread_id === threadId);
      const shown = [...messages, ...pending.filter((p) => p.threadId === threadId && p.state !== "done")
        .map((p) => ({ id: p.id, outgoing: true, body: p.body, date: p.date, status: p.state, attachments: [] }))];
      const atBottom = bubbles.scrollHeight - bubbles.scrollTop - bubbles.clientHeight < 40;
      bubbles.replaceChildren(...shown.map((m) => bubble(m, t)));
      moreButton.hidden = !t || messages.length >= t.message_count;
      if (atBottom || bubbles.dataset.fresh) {
        bubbles.scrollTop = bubbles.scrollHeight;
        delete bubbles.dataset.fresh;
      }
    }

    async function loadThread() {
      if (threadId === null) return;
      const id = threadId;
      try {
        const list = await get(devicePath(deviceId, `messages/${id}?limit=${limit}`));
        if (id !== threadId) return;
        messages = list;
        renderMessages();
      } catch (error) {
        toastError(error, "Could not load the conversation");
      }
    }

    async function openThread(id) {
      threadId = id;
      limit = PAGE;
      messages = [];
      placeholder.hidden = true;
      conversation.hidden = false;
      bubbles.dataset.fresh = "1";
      renderThreads();
      renderHead();
      await loadThread();
      composeText.focus();
    }

    // compose -----------------------------------------------------------------------------------------
    async function fileData(file) {
      const buffer = await file.arrayBuffer();
      let binary = "";
      const bytes = new Uint8Array(buffer);
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return { name: file.name, mime_type: file.type || "application/octet-stream", data: btoa(binary) };
    }

    async function send() {
      const t = threads.find((x) => x.thread_id === threadId);
      const body = composeText.value.trim();
      const file = fileInput.files[0];
      if (!t || (!body && !file)) return;
      const entry = { id: `p${Date.now()}`, threadId, body, date: Date.now(), state: "pending" };
      pending.push(entry);
      composeText.value = "";
      fileInput.value = "";
      attachName.textContent = "";
      bubbles.dataset.fresh = "1";
      renderMessages();
      try {
        const attachments = file ? [await fileData(file)] : [];
        const result = await post(devicePath(deviceId, "messages/send"),
          { addresses: t.addresses, body, attachments });
        entry.state = result.status === "sent" ? "done" : "failed";
        if (entry.state === "failed") toast("The phone could not send the message.", "error");
      } catch (error) {
        entry.state = "failed";
        toastError(error, "The message was not sent");
      }
      await loadThread();
    }

    // search ----------------------------------------------------------------------------------------------
    let searchTimer = null;
    function scheduleSearch() {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(search, 200);
    }

    async function search() {
      const q = searchInput.value.trim();
      if (!q) {
        results = null;
        resultsList.hidden = true;
        threadList.hidden = false;
        return;
      }
      try {
        const found = await get(`/api/search?${new URLSearchParams({ q, kind: "message", limit: "100" })}`);
        if (searchInput.value.trim() !== q) return;
        results = found.filter((r) => r.device === deviceId);
        renderResults();
      } catch (error) {
        toastError(error, "Search failed");
      }
    }

    function renderResults() {
      const byId = new Map(threads.map((t) => [t.thread_id, t]));
      resultsList.replaceChildren(...(results.length ? results.map((r) => {
        const t = byId.get(r.thread_id);
        return h("li", {}, h("button.thread-item.hit", { type: "button", dataset: { testid: "message-hit" },
          onclick: () => openThread(r.thread_id) },
        h("span.thread-text", {},
          h("span.thread-top", {}, h("span.thread-name", { dir: "auto" }, t ? t.names.join(", ") : `Thread ${r.thread_id}`),
            h("span.thread-date", {}, timeText(r.date))),
          h("span.thread-snippet.hit-snippet", { dir: "auto" }, ...highlighted(r.snippet)))));
      }) : [h("li.empty", {}, "Nothing found.")]));
      resultsList.hidden = false;
      threadList.hidden = true;
    }

    // live -------------------------------------------------------------------------------------------------
    function scheduleReload() {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(() => {
        loadThreads();
        loadThread();
        if (results) search();
      }, RELOAD_DEBOUNCE_MS);
    }

    const unsubscribe = store.subscribe((what) => {
      if (what === "devices") renderDevices();
    });
    renderDevices();

    return {
      unmount() {
        unsubscribe();
        clearTimeout(reloadTimer);
        clearTimeout(searchTimer);
      },
      onEvent(event) {
        if (event.type === "hello" || event.type === "resync") {
          scheduleReload();
          loadSync();
          return;
        }
        if (event.device !== deviceId) return;
        if (event.type === "messages.changed" || event.type === "contacts.changed") scheduleReload();
        else if (event.type === "sync.progress") renderSync(event.data);
      },
    };
  },
};
