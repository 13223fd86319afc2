// The Files page: send files (drop or choose), text, links and the clipboard to a device; follow
// transfers live (progress, rate, time left, cancel); act on what arrived (show in folder, open a
// link, copy a text) and see the last clipboard a device sent.
//
// Data: GET /api/transfers (newest first) and GET /api/clipboard, then the events
// "transfer.changed" (data = a transfer) and "clipboard.received" ({content}); "hello"/"resync"
// re-read both. Uploads are multipart POSTs with upload progress (XMLHttpRequest).

import { upload } from "../lib/api.js";
import { h, pageIcons } from "../lib/ui.js";

// Icons this page needs beyond lib/ui.js's set.
const icon = pageIcons({
  upload: '<path d="M12 15.5V4M7.5 8.5 12 4l4.5 4.5"/><path d="M4 15v3.5A1.5 1.5 0 0 0 5.5 20h13a1.5 1.5 0 0 0 1.5-1.5V15"/>',
  send: '<path d="M21 3 10 14"/><path d="m21 3-7 18-4-7-7-4z"/>',
  clipboard: '<rect x="5" y="4.5" width="14" height="17" rx="2"/><path d="M9 4.5V3.5a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v1M9 11h6M9 15h4"/>',
  copy: '<rect x="8.5" y="8.5" width="12" height="12" rx="2"/><path d="M15.5 8.5V5.5a2 2 0 0 0-2-2h-8a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h3"/>',
  folder: '<path d="M3.5 6.5a2 2 0 0 1 2-2h4l2 2.5h7a2 2 0 0 1 2 2v8.5a2 2 0 0 1-2 2h-13a2 2 0 0 1-2-2z"/><path d="M3.5 10h17"/>',
  external: '<path d="M14 4h6v6M20 4l-9 9"/><path d="M18 14v4.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 4 18.5v-11A1.5 1.5 0 0 1 5.5 6H10"/>',
  text: '<path d="M5 6h14M5 10h14M5 14h9M5 18h6"/>',
  file: '<path d="M13.5 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8.5z"/><path d="M13.5 3v5.5H19"/>',
  down: '<path d="M12 5v14M6 13l6 6 6-6"/>',
  up: '<path d="M12 19V5M6 11l6-6 6 6"/>',
});

const MAX_TRANSFERS = 200; // rows kept on the page; the daemon keeps the full history
const URL_PATTERN = /^(https?:\/\/|mailto:|tel:)\S+$/i;

// -- formatting -------------------------------------------------------------------------------------

export function formatBytes(bytes) {
  const value = Number(bytes) || 0;
  if (value < 1024) return `${value} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let size = value / 1024;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size >= 100 ? size.toFixed(0) : size.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function clockTime(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

const STATE_TEXT = { active: "In progress", done: "Done", failed: "Failed", cancelled: "Cancelled" };

// -- the page -------------------------------------------------------------------------------------

export default {
  id: "files",
  title: "Files",
  icon: "files",

  mount(root, ctx) {
    const { store, get, post, devicePath, toast, toastError } = ctx;
    const transfers = new Map(); // id -> transfer
    const rows = new Map(); // id -> {el, sig}
    let selectedId = null;
    let lastClipboard = null; // {device, content, time}
    let uploading = false;

    // header + device picker -------------------------------------------------------------------
    const deviceSelect = h("select.device-select", {
      id: "files-device", dataset: { testid: "files-device" },
      onchange: () => {
        selectedId = deviceSelect.value || null;
        renderTargets();
      },
    });
    const header = h("header.page-header", {},
      h("div.page-heading", {},
        h("h1", {}, "Files"),
        h("p.this-computer", {}, icon("files"),
          h("span", {}, "Send files, text, links and the clipboard; follow every transfer."))),
      h("div.page-actions", {},
        h("label.picker-label", { for: "files-device" }, "Send to"), deviceSelect));

    const noDevice = h("div.empty", { dataset: { testid: "files-no-device" } },
      h("strong", {}, "No device to send to."),
      h("span", {}, " Pair a device on the Devices page and make sure it is reachable."));

    // drop zone ---------------------------------------------------------------------------------
    const fileInput = h("input.visually-hidden", {
      type: "file", multiple: true, id: "files-input", dataset: { testid: "file-input" },
      onchange: () => {
        if (fileInput.files && fileInput.files.length) sendFiles([...fileInput.files]);
        fileInput.value = "";
      },
    });
    const dropStatus = h("p.drop-status", { dataset: { testid: "upload-status" }, "aria-live": "polite" });
    const dropBar = h("span.progress-fill");
    const dropProgress = h("div.progress.drop-progress", { hidden: true }, dropBar);
    const chooseButton = h("button.btn.btn-primary", {
      type: "button", dataset: { testid: "choose-files" }, onclick: () => fileInput.click(),
    }, icon("files"), h("span", {}, "Choose files"));
    const dropTitle = h("p.drop-title", {}, "Drop files here");
    const dropZone = h("div.drop-zone", {
      dataset: { testid: "drop-zone" },
      ondragenter: (event) => dragOver(event),
      ondragover: (event) => dragOver(event),
      ondragleave: (event) => {
        if (!dropZone.contains(event.relatedTarget)) dropZone.classList.remove("drag-over");
      },
      ondrop: (event) => {
        event.preventDefault();
        dropZone.classList.remove("drag-over");
        const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
        if (files.length) sendFiles(files);
      },
    },
    h("div.drop-icon", {}, icon("upload")),
    dropTitle,
    h("p.hint", {}, "or"),
    chooseButton, fileInput, dropProgress, dropStatus);

    function dragOver(event) {
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = selectedId ? "copy" : "none";
      dropZone.classList.add("drag-over");
    }

    // text / link box ---------------------------------------------------------------------------
    const shareInput = h("textarea.text-input", {
      id: "share-text", rows: "3", placeholder: "Text or a link (https://…)",
      dataset: { testid: "share-text" }, oninput: () => updateShareButton(),
    });
    const shareButton = h("button.btn.btn-primary", { type: "submit", dataset: { testid: "share-send" } },
      icon("send"), h("span", {}, "Send text"));
    const shareForm = h("form.stack", { onsubmit: sendShare, dataset: { testid: "share-form" } },
      h("label.box-label", { for: "share-text" }, "A link opens on the device; other text is shown there."),
      shareInput, h("div.box-actions", {}, shareButton));

    function updateShareButton() {
      const isUrl = URL_PATTERN.test(shareInput.value.trim());
      shareButton.querySelector("span").textContent = isUrl ? "Send link" : "Send text";
    }

    // clipboard box -----------------------------------------------------------------------------
    const clipInput = h("textarea.text-input", {
      id: "clipboard-text", rows: "3", placeholder: "Text for the device's clipboard",
      dataset: { testid: "clipboard-text" },
    });
    const clipButton = h("button.btn.btn-primary", { type: "submit", dataset: { testid: "clipboard-send" } },
      icon("clipboard"), h("span", {}, "Send to clipboard"));
    const clipForm = h("form.stack", { onsubmit: sendClipboard, dataset: { testid: "clipboard-form" } },
      h("label.box-label", { for: "clipboard-text" }, "Copied on this computer? It is sent by itself."),
      clipInput, h("div.box-actions", {}, clipButton));
    const receivedClip = h("div.received-clip", { dataset: { testid: "clipboard-received" } });

    const sendPanel = h("div.send-grid", {},
      h("section.panel.send-box.send-files", { "aria-labelledby": "send-files-title" },
        h("h3.box-title", { id: "send-files-title" }, icon("files"), "Files"), dropZone),
      h("section.panel.send-box", { "aria-labelledby": "send-text-title" },
        h("h3.box-title", { id: "send-text-title" }, icon("link"), "Text or link"), shareForm),
      h("section.panel.send-box", { "aria-labelledby": "send-clip-title" },
        h("h3.box-title", { id: "send-clip-title" }, icon("clipboard"), "Clipboard"), clipForm,
        receivedClip));

    const sendSection = h("section.section", { "aria-labelledby": "send-title", dataset: { testid: "send-section" } },
      h("h2.section-title", { id: "send-title" }, "Send"), noDevice, sendPanel);

    // transfers ---------------------------------------------------------------------------------
    const transferList = h("div.transfer-list", { dataset: { testid: "transfer-list" } });
    const transferCount = h("span.count", {}, "0");
    const transfersEmpty = h("div.empty", { dataset: { testid: "transfers-empty" } },
      h("strong", {}, "No transfers yet."),
      h("span", {}, " Files, texts and links you send or receive show up here."));
    const transferSection = h("section.section", { "aria-labelledby": "transfers-title" },
      h("h2.section-title", { id: "transfers-title" }, "Transfers", transferCount),
      transfersEmpty, transferList);

    root.append(header, sendSection, transferSection);

    // actions -------------------------------------------------------------------------------------
    function target() {
      const device = selectedId ? store.device(selectedId) : null;
      if (!device || !device.paired || !device.reachable) {
        toast("Choose a paired, reachable device first", "error");
        return null;
      }
      return device;
    }

    async function sendFiles(files) {
      const device = target();
      if (!device || uploading) return;
      uploading = true;
      const total = files.reduce((sum, f) => sum + f.size, 0);
      const what = files.length === 1 ? files[0].name : `${files.length} files`;
      dropZone.classList.add("uploading");
      dropProgress.hidden = false;
      chooseButton.disabled = true;
      dropBar.style.width = "0%";
      dropStatus.textContent = `Uploading ${what} (${formatBytes(total)})…`;
      try {
        await upload(devicePath(device.id, "share/upload"), files, (sent, size) => {
          const percent = size ? Math.round((sent / size) * 100) : 100;
          dropBar.style.width = `${percent}%`;
          dropStatus.textContent = `Uploading ${what}: ${percent}%`;
        });
        dropStatus.textContent = ""; // the transfer rows below show the rest
        toast(`Sending ${what} to ${device.name}`, "success");
      } catch (error) {
        dropStatus.textContent = "";
        toastError(error, `Send ${what}`);
      } finally {
        uploading = false;
        dropZone.classList.remove("uploading");
        dropProgress.hidden = true;
        chooseButton.disabled = false;
      }
    }

    async function sendShare(event) {
      event.preventDefault();
      const value = shareInput.value.trim();
      if (!value) {
        toast("Type a text or a link to send", "error");
        return;
      }
      const device = target();
      if (!device) return;
      const isUrl = URL_PATTERN.test(value);
      shareButton.disabled = true;
      try {
        await post(devicePath(device.id, "share"), isUrl ? { url: value } : { text: shareInput.value });
        toast(`${isUrl ? "Link" : "Text"} sent to ${device.name}`, "success");
        shareInput.value = "";
        updateShareButton();
      } catch (error) {
        toastError(error, `Send to ${device.name}`);
      } finally {
        shareButton.disabled = false;
      }
    }

    async function sendClipboard(event) {
      event.preventDefault();
      if (!clipInput.value) {
        toast("Type the text to put on the device's clipboard", "error");
        return;
      }
      const device = target();
      if (!device) return;
      clipButton.disabled = true;
      try {
        await post(devicePath(device.id, "clipboard"), { content: clipInput.value });
        toast(`Clipboard sent to ${device.name}`, "success");
        clipInput.value = "";
      } catch (error) {
        toastError(error, `Send the clipboard to ${device.name}`);
      } finally {
        clipButton.disabled = false;
      }
    }

    async function copyText(text, what) {
      try {
        await navigator.clipboard.writeText(text);
        toast(`${what} copied`, "success");
      } catch (error) {
        toastError(error, `Copy the ${what.toLowerCase()}`);
      }
    }

    async function transferAction(transfer, action, done) {
      try {
        await post(`/api/transfers/${encodeURIComponent(transfer.id)}/${action}`, {});
        if (done) toast(done, "success");
      } catch (error) {
        toastError(error, `${action === "cancel" ? "Cancel" : "Show"} ${transfer.name}`);
      }
    }

    async function openUrl(url) {
      try {
        await post("/api/open-url", { url });
      } catch (error) {
        toastError(error, "Open the link");
      }
    }

    // rendering -----------------------------------------------------------------------------------
    function usableDevices() {
      return [...store.devices.values()].filter((d) => d.paired)
        .sort((a, b) => Number(b.reachable) - Number(a.reachable) || a.name.localeCompare(b.name));
    }

    function renderTargets() {
      const devices = usableDevices();
      const reachable = devices.filter((d) => d.reachable);
      if (!selectedId || !devices.some((d) => d.id === selectedId)) {
        selectedId = reachable.length ? reachable[0].id : (devices[0] ? devices[0].id : null);
      }
      const options = devices.map((d) => h("option", { value: d.id, selected: d.id === selectedId },
        d.reachable ? d.name : `${d.name} (unreachable)`));
      const sig = JSON.stringify(devices.map((d) => [d.id, d.name, d.reachable, d.id === selectedId]));
      if (deviceSelect.dataset.sig !== sig) {
        deviceSelect.replaceChildren(...options);
        deviceSelect.dataset.sig = sig;
        if (selectedId) deviceSelect.value = selectedId;
      }
      deviceSelect.disabled = devices.length === 0;
      const device = selectedId ? store.device(selectedId) : null;
      const usable = Boolean(device && device.reachable);
      noDevice.hidden = usable || !store.loaded;
      sendPanel.classList.toggle("disabled", !usable);
      for (const control of sendPanel.querySelectorAll("form button, form textarea, .drop-zone button")) {
        control.disabled = !usable;
      }
      dropTitle.textContent = usable ? `Drop files here to send them to ${device.name}` : "Drop files here";
    }

    function renderClipboard() {
      if (!lastClipboard) {
        receivedClip.replaceChildren(
          h("p.received-title", {}, "Last received"),
          h("p.hint", { dataset: { testid: "clipboard-received-empty" } },
            "Nothing yet. On Android, use \u201cSend clipboard\u201d in KDE Connect."));
        return;
      }
      const from = store.deviceName(lastClipboard.device);
      receivedClip.replaceChildren(
        h("p.received-title", {}, "Last received", h("span.received-meta", {},
          ` from ${from} · ${clockTime(lastClipboard.time)}`)),
        h("pre.received-text", { dataset: { testid: "clipboard-received-text" } }, lastClipboard.content),
        h("div.box-actions", {}, h("button.btn.btn-secondary.btn-small", {
          type: "button", dataset: { testid: "clipboard-copy" },
          onclick: () => copyText(lastClipboard.content, "Clipboard"),
        }, icon("copy"), h("span", {}, "Copy"))));
    }

    function progressText(t) {
      if (t.kind !== "file") return t.direction === "in" ? "Received" : "Sent";
      const size = formatBytes(t.size);
      if (t.state === "active") {
        const parts = [`${formatBytes(t.transferred)} of ${size}`];
        if (t.rate > 0) parts.push(`${formatBytes(t.rate)}/s`);
        if (t.eta !== null && t.eta !== undefined) parts.push(`${formatDuration(t.eta)} left`);
        return parts.join(" · ");
      }
      if (t.state === "done") return size;
      if (t.state === "failed") return `${formatBytes(t.transferred)} of ${size}${t.error ? ` · ${t.error}` : ""}`;
      return `${formatBytes(t.transferred)} of ${size}`;
    }

    function transferRow(t) {
      const percent = t.size > 0 ? Math.min(100, Math.round((t.transferred / t.size) * 100))
        : t.state === "done" ? 100 : 0;
      const device = store.device(t.device);
      const deviceName = device ? device.name : (t.device_name || "A device");
      const kindIcon = t.kind === "url" ? "link" : t.kind === "text" ? "text" : "file";
      const actions = [];
      if (t.state === "active") {
        actions.push(h("button.btn.btn-secondary.btn-small", {
          type: "button", dataset: { testid: "transfer-cancel" },
          onclick: () => transferAction(t, "cancel"),
        }, "Cancel"));
      } else if (t.state === "done") {
        if (t.kind === "file" && t.path) {
          actions.push(h("button.btn.btn-secondary.btn-small", {
            type: "button", dataset: { testid: "transfer-reveal" },
            onclick: () => transferAction(t, "reveal"),
          }, icon("folder"), h("span", {}, "Show in folder")));
        }
        if (t.kind === "url" && t.direction === "in" && t.content) {
          actions.push(h("button.btn.btn-primary.btn-small", {
            type: "button", dataset: { testid: "transfer-open" }, onclick: () => openUrl(t.content),
          }, icon("external"), h("span", {}, "Open")));
        }
        if (t.kind === "text" && t.direction === "in" && t.content) {
          actions.push(h("button.btn.btn-secondary.btn-small", {
            type: "button", dataset: { testid: "transfer-copy" },
            onclick: () => copyText(t.content, "Text"),
          }, icon("copy"), h("span", {}, "Copy")));
        }
      }
      const bar = h("span.progress-fill");
      bar.style.width = `${percent}%`;
      const detail = t.kind === "file" || !t.content || t.content === t.name ? null
        : h("p.transfer-content", { title: t.content }, t.content);
      return h(`article.transfer.transfer-${t.state}`, {
        dataset: {
          testid: "transfer", transferId: t.id, state: t.state, direction: t.direction,
          kind: t.kind || "file", name: t.name,
        },
      },
      h(`div.transfer-icon.dir-${t.direction}`, { title: t.direction === "in" ? "Received" : "Sent" },
        icon(kindIcon), h("span.dir-badge", { "aria-hidden": "true" }, icon(t.direction === "in" ? "down" : "up"))),
      h("div.transfer-main", {},
        h("div.transfer-line", {},
          h("span.transfer-name", { dataset: { testid: "transfer-name" }, title: t.path || t.name }, t.name),
          h(`span.badge.badge-transfer-${t.state}`, { dataset: { testid: "transfer-state" } }, STATE_TEXT[t.state] || t.state)),
        detail,
        t.kind === "file" ? h(`div.progress.progress-${t.state}`, {
          role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(percent),
          dataset: { testid: "transfer-progress", percent: String(percent) },
        }, bar) : null,
        h("p.transfer-meta", { dataset: { testid: "transfer-meta" } },
          h("span", {}, `${t.direction === "in" ? "From" : "To"} ${deviceName}`),
          h("span", {}, clockTime(t.started)),
          h("span.transfer-progress-text", { dataset: { testid: "transfer-progress-text" } }, progressText(t)))),
      h("div.transfer-actions", {}, actions));
    }

    function renderTransfers() {
      const list = [...transfers.values()].sort((a, b) => (b.started || 0) - (a.started || 0))
        .slice(0, MAX_TRANSFERS);
      const wanted = list.map((t) => {
        const sig = JSON.stringify([t, store.deviceName(t.device)]);
        let entry = rows.get(t.id);
        if (!entry || entry.sig !== sig) {
          const el = transferRow(t);
          if (entry) entry.el.replaceWith(el);
          entry = { el, sig };
          rows.set(t.id, entry);
        }
        return entry.el;
      });
      for (const [id, entry] of [...rows]) {
        if (!list.some((t) => t.id === id)) {
          entry.el.remove();
          rows.delete(id);
        }
      }
      wanted.forEach((el, index) => {
        if (transferList.children[index] !== el) transferList.insertBefore(el, transferList.children[index] || null);
      });
      transferCount.textContent = String(list.length);
      transfersEmpty.hidden = list.length > 0;
    }

    // data ----------------------------------------------------------------------------------------
    async function loadTransfers() {
      try {
        const list = await get("/api/transfers");
        transfers.clear();
        for (const t of list || []) transfers.set(t.id, t);
        renderTransfers();
      } catch (error) {
        if (error.status !== 401) toastError(error, "Could not load the transfers");
      }
    }

    async function loadClipboard() {
      try {
        lastClipboard = await get("/api/clipboard");
        renderClipboard();
      } catch (error) {
        if (error.status !== 401) toastError(error, "Could not load the last clipboard");
      }
    }

    const unsubscribe = store.subscribe(() => {
      renderTargets();
      renderTransfers();
    });
    renderTargets();
    renderClipboard();
    renderTransfers();
    loadTransfers();
    loadClipboard();

    return {
      onEvent(event) {
        const data = event.data || {};
        if (event.type === "transfer.changed" && data.id) {
          transfers.set(data.id, data);
          renderTransfers();
        } else if (event.type === "clipboard.received") {
          lastClipboard = { device: event.device, content: String(data.content ?? ""), time: event.time };
          renderClipboard();
        } else if (event.type === "hello" || event.type === "resync") {
          loadTransfers();
          loadClipboard();
        }
      },
      unmount() {
        unsubscribe();
      },
    };
  },
};
