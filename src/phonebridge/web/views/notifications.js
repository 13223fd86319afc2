// The Notifications page: the phone's notifications, live (reply, actions, dismiss, mute an
// app), the earlier ones, missed calls and a search over the history. Cards are rebuilt only
// when their notification changed, so a half-typed reply survives unrelated updates.

import { getToken } from "../lib/api.js";
import { callerName, callIcon, photoUrl } from "../lib/calls.js";
import { fillDeviceSelect, h, icon } from "../lib/ui.js";

const EARLIER_SHOWN = 30;
const MISSED_SHOWN = 8;
const iconUrls = new Map(); // icon hash -> Promise<blob URL | null>, for the page's lifetime

function loadIcon(hash) {
  if (!iconUrls.has(hash)) {
    // <img> cannot send the API token: fetch with it and show a blob URL.
    iconUrls.set(hash, fetch(`/api/icons/${hash}`, { headers: { Authorization: `Bearer ${getToken()}` } })
      .then((r) => (r.ok ? r.blob() : null))
      .then((blob) => (blob ? URL.createObjectURL(blob) : null))
      .catch(() => null));
  }
  return iconUrls.get(hash);
}

function timeText(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  const seconds = Math.round((Date.now() - ms) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (date.toDateString() === new Date().toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function appAvatar(n) {
  const letter = (n.app || n.title || "?").trim().charAt(0).toUpperCase() || "?";
  const el = h("span.app-icon", { "aria-hidden": "true", dataset: { testid: "app-icon" } }, letter);
  if (n.icon) {
    loadIcon(n.icon).then((url) => {
      if (url) el.replaceChildren(h("img", { src: url, alt: "" }));
    });
  }
  return el;
}

function signature(n, mutedApps) {
  return JSON.stringify([n.title, n.text, n.time, n.active, n.icon, n.actions, n.can_reply,
    n.dismissable, mutedApps.has(n.app)]);
}

export default {
  id: "notifications",
  title: "Notifications",
  icon: "bell",

  mount(root, ctx) {
    const { store, get, post, devicePath, toast, toastError } = ctx;
    let deviceId = null;
    let items = []; // newest first
    let calls = [];
    let mutedApps = new Set();
    let results = null; // search results, or null
    const cards = new Map(); // key -> {el, sig}
    const drafts = new Map(); // key -> reply text

    // header -------------------------------------------------------------------------------------
    const deviceSelect = h("select.device-select", {
      dataset: { testid: "notifications-device" }, "aria-label": "Device",
      onchange: () => choose(deviceSelect.value),
    });
    const searchInput = h("input.search-input", {
      type: "search", placeholder: "Search notifications…", "aria-label": "Search notifications",
      dataset: { testid: "notifications-search" }, autocomplete: "off",
    });
    const searchForm = h("form.search-form", { onsubmit: search, role: "search" },
      searchInput, h("button.btn.btn-secondary", { type: "submit" }, "Search"));
    const header = h("header.page-header", {},
      h("div.page-heading", {}, h("h1", {}, "Notifications"),
        h("p.this-computer", {}, "What your phone shows, live. Reply, act or dismiss from here.")),
      h("div.page-actions", {}, deviceSelect, searchForm));

    const activeList = h("div.feed", { dataset: { testid: "notification-feed" } });
    const activeCount = h("span.count", {}, "0");
    const activeEmpty = h("div.empty", { dataset: { testid: "notifications-empty" } });
    const earlierList = h("div.feed.feed-earlier", { dataset: { testid: "notification-history" } });
    const earlierSection = h("section.section", { hidden: true },
      h("h2.section-title", {}, "Earlier"), earlierList);
    const resultsList = h("div.feed", { dataset: { testid: "search-results" } });
    const resultsTitle = h("h2.section-title", {}, "Results");
    const resultsSection = h("section.section", { hidden: true },
      h("div.results-head", {}, resultsTitle,
        h("button.btn.btn-ghost", { type: "button", onclick: clearSearch }, "Clear")),
      resultsList);
    const feedSection = h("section.section", { "aria-labelledby": "feed-title" },
      h("h2.section-title", { id: "feed-title" }, "On the phone", activeCount), activeEmpty, activeList);

    const missedList = h("ul.call-list", { dataset: { testid: "missed-calls" } });
    const missedEmpty = h("p.hint", {}, "No missed calls.");
    const mutedList = h("div.muted-apps", { dataset: { testid: "muted-apps" } });
    const aside = h("aside.notif-aside", {},
      h("section.panel", {}, h("h2.section-title", {}, "Missed calls"), missedEmpty, missedList),
      h("section.panel", {}, h("h2.section-title", {}, "Muted apps"),
        h("p.hint", {}, "Their notifications are listed here but raise no desktop pop-up."), mutedList));
    root.append(header, h("div.notif-layout", {},
      h("div.notif-main", {}, resultsSection, feedSection, earlierSection), aside));

    // data -----------------------------------------------------------------------------------------
    function renderDevices() {
      const devices = fillDeviceSelect(deviceSelect, store, deviceId);
      if (!deviceId && devices.length) choose(devices[0].id);
      if (!devices.length) {
        activeEmpty.replaceChildren(h("strong", {}, "No paired phone."),
          h("span", {}, " Pair one on the Devices page to see its notifications here."));
        activeEmpty.hidden = false;
      }
    }

    async function choose(id) {
      deviceId = id;
      cards.clear();
      activeList.replaceChildren();
      earlierList.replaceChildren();
      await reload();
    }

    async function reload() {
      if (!deviceId) return;
      const id = deviceId;
      try {
        const [list, log, muted] = await Promise.all([
          get(devicePath(id, "notifications")), get(devicePath(id, "calls")),
          get(devicePath(id, "notifications/muted"))]);
        if (id !== deviceId) return;
        items = list;
        calls = log;
        mutedApps = new Set(muted.apps);
        render();
      } catch (error) {
        toastError(error, "Could not load the notifications");
      }
    }

    // actions --------------------------------------------------------------------------------------
    async function act(what, path, body, done) {
      try {
        await post(devicePath(deviceId, path), body);
        if (done) done();
      } catch (error) {
        toastError(error, what);
      }
    }

    const dismiss = (n) => act("Dismiss", "notifications/dismiss", { id: n.id });
    const press = (n, action) => act(action, "notifications/action", { id: n.id, action },
      () => toast(`“${action}” sent to ${n.app || "the app"}`, "success"));
    const setMuted = (app, muted) => act(muted ? "Mute app" : "Unmute app", "notifications/mute",
      { app, muted }, () => {
        if (muted) mutedApps.add(app);
        else mutedApps.delete(app);
        render();
      });

    async function sendReply(n, input, button) {
      const message = input.value.trim();
      if (!message) return;
      button.disabled = true;
      try {
        await post(devicePath(deviceId, "notifications/reply"), { id: n.id, message });
        drafts.delete(n.id);
        input.value = "";
        toast(`Reply sent to ${n.title}`, "success");
      } catch (error) {
        toastError(error, "Reply");
      } finally {
        button.disabled = false;
      }
    }

    // rendering ------------------------------------------------------------------------------------
    function card(n) {
      const buttons = [];
      for (const action of n.active ? n.actions : []) {
        buttons.push(h("button.btn.btn-secondary.btn-small", {
          type: "button", dataset: { testid: "notification-action", action }, onclick: () => press(n, action),
        }, action));
      }
      let reply = null;
      if (n.active && n.can_reply) {
        const input = h("input.reply-input", {
          type: "text", placeholder: `Reply to ${n.title}…`, "aria-label": `Reply to ${n.title}`,
          value: drafts.get(n.id) || "", dataset: { testid: "reply-input" },
          oninput: () => drafts.set(n.id, input.value),
        });
        const send = h("button.btn.btn-primary.btn-small", { type: "submit", dataset: { testid: "reply-send" } }, "Send");
        reply = h("form.reply-form", { onsubmit: (e) => { e.preventDefault(); sendReply(n, input, send); } }, input, send);
      }
      const isMuted = mutedApps.has(n.app);
      const tools = h("div.notif-tools", {},
        n.active && n.app ? h("button.icon-btn", {
          type: "button", title: isMuted ? `Unmute ${n.app}` : `No pop-ups for ${n.app}`,
          "aria-label": isMuted ? `Unmute ${n.app}` : `Mute ${n.app}`, dataset: { testid: "mute-app" },
          onclick: () => setMuted(n.app, !isMuted), class: isMuted ? "on" : "",
        }, icon("bell")) : null,
        n.active && n.dismissable ? h("button.icon-btn", {
          type: "button", title: "Dismiss on the phone", "aria-label": `Dismiss ${n.title}`,
          dataset: { testid: "dismiss" }, onclick: () => dismiss(n),
        }, icon("close")) : null);
      return h(`article.notif${n.active ? "" : ".notif-gone"}`, {
        dataset: { testid: "notification", id: n.id, app: n.app },
      },
      appAvatar(n),
      h("div.notif-body", {},
        h("div.notif-meta", {}, h("span.notif-app", {}, n.app || "Notification"),
          h("span.notif-time", { title: new Date(n.time).toLocaleString() }, timeText(n.time)),
          isMuted ? h("span.badge.badge-unpaired", {}, "muted") : null),
        h("div.notif-title", { dataset: { testid: "notification-title" } }, n.title),
        n.text ? h("div.notif-text", { dataset: { testid: "notification-text" } }, n.text) : null,
        buttons.length ? h("div.notif-actions", {}, buttons) : null,
        reply),
      tools);
    }

    function fill(list, wanted) {
      const els = wanted.map((n) => {
        const sig = signature(n, mutedApps);
        const cached = cards.get(n.id);
        if (cached && cached.sig === sig) return cached.el;
        const el = card(n);
        cards.set(n.id, { el, sig });
        return el;
      });
      // Keep focused elements in place when nothing moved.
      const same = els.length === list.children.length && els.every((el, i) => list.children[i] === el);
      if (!same) list.replaceChildren(...els);
    }

    function render() {
      const active = items.filter((n) => n.active);
      const earlier = items.filter((n) => !n.active).slice(0, EARLIER_SHOWN);
      activeCount.textContent = String(active.length);
      fill(activeList, active);
      fill(earlierList, earlier);
      earlierSection.hidden = !earlier.length;
      activeEmpty.hidden = active.length > 0;
      if (!active.length) {
        activeEmpty.replaceChildren(h("strong", {}, "Nothing on the phone right now."),
          h("span", {}, " New notifications appear here as they arrive."));
      }
      const missed = calls.filter((c) => c.event === "missed").slice(0, MISSED_SHOWN);
      missedEmpty.hidden = missed.length > 0;
      missedList.replaceChildren(...missed.map((c) => {
        const photo = photoUrl(c.thumbnail);
        return h("li.call-item", { dataset: { testid: "missed-call" } },
          photo ? h("img.call-photo.small", { src: photo, alt: "" }) : h("span.call-photo.small", {}, callIcon()),
          h("div.call-text", {}, h("strong", {}, callerName(c)),
            h("span.call-number", {}, [c.name && c.number && c.name !== c.number ? c.number : null,
              timeText(c.time)].filter(Boolean).join(" · "))));
      }));
      mutedList.replaceChildren(...(mutedApps.size ? [...mutedApps].sort().map((app) => h("span.chip", {},
        app, h("button.chip-x", { type: "button", "aria-label": `Unmute ${app}`, title: `Unmute ${app}`,
          onclick: () => setMuted(app, false) }, icon("close")))) : [h("span.hint", {}, "None.")]));
    }

    // search --------------------------------------------------------------------------------------------
    async function search(event) {
      event.preventDefault();
      const q = searchInput.value.trim();
      if (!q) {
        clearSearch();
        return;
      }
      try {
        results = await get(`/api/search?q=${encodeURIComponent(q)}`);
      } catch (error) {
        toastError(error, "Search");
        return;
      }
      resultsTitle.textContent = `${results.length} result${results.length === 1 ? "" : "s"} for “${q}”`;
      resultsList.replaceChildren(...results.map((r) => h("div.result", { dataset: { testid: "search-result" } },
        h("div.notif-meta", {}, h("span.notif-app", {}, store.deviceName(r.device)),
          h("span.notif-time", {}, timeText(r.date))),
        snippet(r.snippet))));
      if (!results.length) resultsList.append(h("div.empty", {}, "Nothing found."));
      resultsSection.hidden = false;
    }

    function snippet(text) {
      // The API marks hits with [ and ]: show them highlighted, as text (never HTML).
      const el = h("div.notif-text");
      for (const [i, part] of String(text).split(/\[|\]/).entries()) {
        el.append(i % 2 ? h("mark", {}, part) : document.createTextNode(part));
      }
      return el;
    }

    function clearSearch() {
      results = null;
      searchInput.value = "";
      resultsSection.hidden = true;
    }

    // live --------------------------------------------------------------------------------------------
    const unsubscribe = store.subscribe((what) => {
      if (what === "devices") renderDevices();
    });
    renderDevices();

    return {
      unmount() {
        unsubscribe();
      },
      onEvent(event) {
        if (event.type === "hello" || event.type === "resync") {
          reload();
          return;
        }
        if (event.device !== deviceId) return;
        const data = event.data || {};
        if (event.type === "notification.posted" || event.type === "notification.updated") {
          items = [data, ...items.filter((n) => n.id !== data.id)]
            .sort((a, b) => b.time - a.time);
          render();
        } else if (event.type === "notification.removed") {
          items = items.map((n) => (n.id === data.id ? { ...n, active: false } : n));
          render();
        } else if (event.type === "call.changed" && !data.active) {
          calls = [data, ...calls];
          render();
        }
      },
    };
  },
};
