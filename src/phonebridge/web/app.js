// PhoneBridge web UI: the shell. Reads the access token, draws the navigation, keeps the shared
// store live over the event WebSocket and mounts one page module at a time (views/*.js).
//
// A page module exports {id, title, icon, mount(root, ctx)}; mount returns {unmount?, onEvent?}.
// Adding a page (Files, Messages, ...) is one import and one entry in PAGES.

import {
  EventStream, devicePath, forgetToken, get, initToken, onUnauthorized, post, saveToken,
} from "./lib/api.js";
import { Store } from "./lib/store.js";
import { h, icon, toast, toastError } from "./lib/ui.js";
import devicesPage from "./views/devices.js";
import filesPage from "./views/files.js";
import notificationsPage from "./views/notifications.js";
import messagesPage from "./views/messages.js";
import photosPage from "./views/photos.js";
import { mountCallBanner } from "./lib/calls.js";

const PAGES = [devicesPage, filesPage, notificationsPage, messagesPage, photosPage];
const DEFAULT_PAGE = PAGES[0].id;

const store = new Store();
let stream = null;
let current = null; // {page, handle}
let authFailed = false;

/**
 * What pages get. `applyResult(device)`: show the device JSON an action answered with, unless the
 * event stream is live: then its "device.changed" events, which arrive in order, are the truth and
 * an HTTP answer could be older than an event already applied (e.g. "requested" after "paired").
 */
const ctx = {
  store, get, post, devicePath, toast, toastError,
  isLive: () => Boolean(stream && stream.state === "connected"),
  applyResult: (device) => {
    if (!ctx.isLive()) store.upsert(device);
  },
};
const callBanner = mountCallBanner(ctx); // incoming calls, on every page

// -- access token ---------------------------------------------------------------------------------

function showAuthRequired() {
  if (authFailed) return;
  authFailed = true;
  forgetToken();
  if (stream) stream.stop();
  if (current && current.handle && current.handle.unmount) current.handle.unmount();
  current = null;
  setConnection("disconnected");

  const input = h("input", {
    id: "auth-address", type: "text", dataset: { testid: "auth-address" },
    placeholder: "http://127.0.0.1:8716/#token=…", autocomplete: "off", spellcheck: "false",
  });
  const useAddress = (event) => {
    event.preventDefault();
    const value = input.value.trim();
    const match = value.match(/[#&?]token=([^&\s]+)/) || value.match(/^([A-Za-z0-9_-]{16,})$/);
    if (!match) {
      toast("That is not a PhoneBridge address with a token (it ends in #token=…).", "error");
      return;
    }
    saveToken(decodeURIComponent(match[1]));
    window.location.reload();
  };

  const main = document.getElementById("main");
  main.replaceChildren(h("section.auth", { dataset: { testid: "auth-required" }, "aria-live": "polite" },
    h("div.auth-card", {},
      h("div.auth-icon", {}, icon("key")),
      h("h1", {}, "Open PhoneBridge from the command line"),
      h("p", {}, "This page needs the daemon's access token, which it did not get or which is no "
        + "longer valid."),
      h("p", {}, "Run ", h("code", {}, "phonebridge"), " in a terminal: it starts the daemon if "
        + "needed, opens this page and prints its address (with the token) to open here."),
      h("label.auth-label", { for: "auth-address" }, "Or paste the address it printed:"),
      h("form.auth-form", { onsubmit: useAddress },
        input,
        h("button.btn.btn-primary", { type: "submit", dataset: { testid: "auth-open" } }, "Open")))));
}

// -- navigation -----------------------------------------------------------------------------------

function pageFromHash() {
  const match = window.location.hash.match(/^#\/([\w-]+)/);
  const id = match ? match[1] : DEFAULT_PAGE;
  return PAGES.find((p) => p.id === id) || PAGES[0];
}

function renderNav() {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...PAGES.map((page) => h("a.nav-item", {
    href: `#/${page.id}`,
    dataset: { testid: `nav-${page.id}`, page: page.id },
  }, icon(page.icon), h("span", {}, page.title))));
}

function showPage() {
  if (authFailed) return;
  const page = pageFromHash();
  if (current && current.page === page) return;
  if (current && current.handle && current.handle.unmount) current.handle.unmount();
  for (const link of document.querySelectorAll("#nav .nav-item")) {
    const active = link.dataset.page === page.id;
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page.title} · PhoneBridge`;
  const root = h("div.page", { dataset: { testid: `page-${page.id}` } });
  document.getElementById("main").replaceChildren(root);
  current = { page, handle: page.mount(root, ctx) || {} };
}

// -- connection indicator ---------------------------------------------------------------------------

const CONNECTION_TEXT = { connected: "Live", connecting: "Connecting…", disconnected: "Offline" };

let everConnected = false;

function setConnection(state) {
  if (state === "connected") everConnected = true;
  // Once we were live, say so loudly when that ends: what the page shows may be out of date.
  document.getElementById("offline-banner").hidden = state === "connected" || !everConnected || authFailed;
  const el = document.getElementById("connection");
  el.dataset.state = state;
  el.querySelector(".connection-text").textContent = CONNECTION_TEXT[state] || state;
  el.title = state === "connected" ? "Receiving live updates from the daemon"
    : state === "connecting" ? "Connecting to the daemon…"
      : "Not connected to the daemon: click to retry";
}

// -- events -----------------------------------------------------------------------------------------

function refreshAll() {
  store.loadDevices().catch((error) => toastError(error, "Could not load the devices"));
}

/** What to tell the user when a pairing changed, as [text, kind], or null. */
function pairMessage(name, { old, new: now, reason, verification_key: key }) {
  if (now === "incoming") return [`${name} wants to pair. Check the code on the phone: ${key || "?"}`, "info"];
  if (now === "paired") return [`Paired with ${name}`, "success"];
  if (now !== "unpaired") return null;
  const texts = {
    "unpaired by peer": [`${name} unpaired this computer`, "info"],
    "peer asked to pair again": [`${name} asked to pair again`, "info"],
    "rejected by peer": [`${name} rejected the pair request`, "warning"],
    "cancelled by peer": [`${name} cancelled its pair request`, "info"],
    "timed out": [old === "incoming" ? `The pair request from ${name} expired`
      : `${name} did not answer the pair request`, "warning"],
    rejected: [`Rejected the pair request from ${name}`, "info"],
    "link lost": [`Pairing with ${name} stopped: the connection was lost`, "warning"],
  };
  if (texts[reason]) return texts[reason];
  if (old === "paired") return [`Unpaired ${name}`, "info"];
  if (old === "requested") return [`Cancelled the pair request to ${name}`, "info"];
  return [`Pairing with ${name} ended${reason ? `: ${reason}` : ""}`, "info"];
}

function handleEvent(event) {
  callBanner.onEvent(event);
  const name = store.deviceName(event.device);
  const data = event.data || {};
  switch (event.type) {
    case "hello":
      store.setStatus(data);
      refreshAll(); // first connect or a reconnect: we may have missed changes
      break;
    case "resync":
      store.loadStatus().catch(() => {});
      refreshAll();
      break;
    case "device.changed":
      store.upsert(data);
      break;
    case "device.removed":
      store.remove(event.device);
      break;
    case "pair.changed": {
      const message = pairMessage(name, data);
      if (message) toast(message[0], message[1], { timeout: data.new === "incoming" ? 15000 : undefined });
      break;
    }
    case "pair.refused":
      toast(`Pair request from ${name} refused: ${data.reason || "refused"}`, "warning");
      break;
    case "device.certificate_changed":
      toast(`${name} presented a different certificate and was refused. Unpair it to pair again.`, "error",
        { timeout: 0 });
      break;
    case "ping.received":
      toast(data.message ? `Ping from ${name}: ${data.message}` : `Ping from ${name}`, "info");
      break;
    case "findmyphone.ringing":
      toast(`${name} is looking for this computer`, "warning");
      break;
    default:
      break;
  }
  if (current && current.handle && current.handle.onEvent) {
    try {
      current.handle.onEvent(event);
    } catch (error) {
      console.error(error);
    }
  }
}

// -- start --------------------------------------------------------------------------------------

async function start() {
  const token = initToken();
  // Opening the printed address again in this tab only changes the fragment: take the new token.
  window.addEventListener("hashchange", () => {
    if (/(^#|&)token=/.test(window.location.hash)) {
      initToken();
      window.location.reload();
    }
  });
  renderNav();
  const connection = document.getElementById("connection");
  connection.addEventListener("click", () => stream && stream.retry());
  document.getElementById("offline-retry").addEventListener("click", () => stream && stream.retry());
  setConnection("disconnected");
  onUnauthorized(showAuthRequired);
  if (!token) {
    showAuthRequired();
    return;
  }
  window.addEventListener("hashchange", showPage);
  showPage();
  try {
    await Promise.all([store.loadStatus(), store.loadDevices()]);
  } catch (error) {
    if (error.status !== 401) toastError(error, "Could not load PhoneBridge's state");
    if (error.status === 401) return;
  }
  stream = new EventStream({ onEvent: handleEvent, onState: setConnection });
  stream.start();
}

start();
