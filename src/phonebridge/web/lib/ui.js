// Small DOM helpers shared by every page: element builder, icons, toasts.
//
// Text from devices (names, messages) is always set as text, never parsed as HTML.

/**
 * h("button.primary", {onclick, dataset: {testid: "x"}}, "Text", child, ...)
 * The tag may carry classes after dots. Attributes: `class`, `dataset`, `on*` handlers,
 * booleans (true sets, false/null/undefined omit) and strings.
 */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.classList.add(...classes);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") {
      for (const c of String(value).split(/\s+/).filter(Boolean)) el.classList.add(c);
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) el.dataset[k] = v;
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" || key === "checked") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// -- icons ------------------------------------------------------------------------------------------
// Inline SVG (24x24, stroke = currentColor): no font or network needed.

const ICONS = {
  phone: '<rect x="6" y="2" width="12" height="20" rx="2.5"/><path d="M10.5 18.5h3"/>',
  tablet: '<rect x="4" y="2" width="16" height="20" rx="2.5"/><path d="M10.5 18.5h3"/>',
  laptop: '<rect x="4" y="5" width="16" height="11" rx="1.5"/><path d="M2 19h20"/>',
  desktop: '<rect x="2.5" y="3.5" width="19" height="13" rx="1.5"/><path d="M8.5 21h7M12 16.5V21"/>',
  tv: '<rect x="2.5" y="5" width="19" height="13" rx="1.5"/><path d="M8 21h8M8.5 2l3.5 3 3.5-3"/>',
  devices: '<rect x="2.5" y="4" width="13" height="10" rx="1.5"/><path d="M5 18h8"/><rect x="16" y="8" width="6" height="12" rx="1.5"/>',
  files: '<path d="M3.5 6.5a2 2 0 0 1 2-2h4l2 2.5h7a2 2 0 0 1 2 2v8.5a2 2 0 0 1-2 2h-13a2 2 0 0 1-2-2z"/>',
  messages: '<path d="M4 5h16v11H9l-5 4z"/>',
  bell: '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4z"/><path d="M10 20.5a2 2 0 0 0 4 0"/>',
  photos: '<rect x="3" y="4" width="18" height="16" rx="2"/><circle cx="9" cy="10" r="2"/><path d="m21 16-5-5-9 9"/>',
  refresh: '<path d="M20 11a8 8 0 0 0-14.5-4.5L4 8"/><path d="M4 3.5V8h4.5"/><path d="M4 13a8 8 0 0 0 14.5 4.5L20 16"/><path d="M20 20.5V16h-4.5"/>',
  link: '<path d="M10 14a4.5 4.5 0 0 0 6.4 0l3-3a4.5 4.5 0 0 0-6.4-6.4l-1 1"/><path d="M14 10a4.5 4.5 0 0 0-6.4 0l-3 3a4.5 4.5 0 0 0 6.4 6.4l1-1"/>',
  bolt: '<path d="M13 2 5 13.5h6L10 22l8-11.5h-6z" fill="currentColor" stroke="none"/>',
  shield: '<path d="M12 2.5 4 5.5v6c0 5 3.5 8.5 8 10 4.5-1.5 8-5 8-10v-6z"/><path d="M12 8v4.5M12 16h.01"/>',
  key: '<circle cx="8" cy="15" r="4"/><path d="m11 12 9-9M17 6l3 3M15 8l2 2"/>',
  close: '<path d="M6 6l12 12M18 6 6 18"/>',
  check: '<path d="m5 12.5 4.5 4.5L19 7.5"/>',
  warning: '<path d="M12 3 2 20.5h20z"/><path d="M12 9.5v5M12 17.5h.01"/>',
  info: '<circle cx="12" cy="12" r="9.5"/><path d="M12 11v6M12 7.5h.01"/>',
};

const SVG_NS = "http://www.w3.org/2000/svg";

export function icon(name, cls = "") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon ${cls}`.trim());
  // Only our own constant markup above is ever parsed here.
  svg.innerHTML = ICONS[name] || ICONS.devices;
  return svg;
}

/** An `icon()` that also knows a page's own icons (same 24x24 stroke style, constant markup only). */
export function pageIcons(extra) {
  return (name, cls = "") => {
    if (!(name in extra)) return icon(name, cls);
    const svg = icon("devices", cls);
    svg.innerHTML = extra[name];
    return svg;
  };
}

export function deviceIcon(type) {
  return icon(type in ICONS ? type : "devices", "device-icon");
}

// -- toasts ---------------------------------------------------------------------------------------

/** Show a message in the corner. kind: "info" | "success" | "warning" | "error". */
export function toast(message, kind = "info", { timeout } = {}) {
  const region = document.getElementById("toasts");
  if (!region) {
    console.warn(message);
    return;
  }
  const ms = timeout ?? (kind === "error" || kind === "warning" ? 9000 : 4000);
  const names = { success: "check", error: "warning", warning: "warning", info: "info" };
  const close = () => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 200);
  };
  const el = h(`div.toast.toast-${kind}`, {
    role: kind === "error" ? "alert" : "status",
    dataset: { testid: "toast", kind },
  },
  icon(names[kind] || "info", "toast-icon"),
  h("span.toast-text", {}, message),
  h("button.toast-close", { type: "button", "aria-label": "Dismiss", title: "Dismiss", onclick: close },
    icon("close")));
  region.append(el);
  while (region.children.length > 5) region.firstElementChild.remove();
  if (ms > 0) setTimeout(close, ms);
  return el;
}

/** Report a failed action: the API's own message, never silently dropped. */
export function toastError(error, what) {
  const message = error && error.message ? error.message : String(error);
  toast(what ? `${what}: ${message}` : message, "error");
}

/** Paired devices, reachable first, then by name. */
export function pairedDevices(store) {
  return [...store.devices.values()].filter((d) => d.paired)
    .sort((a, b) => Number(b.reachable) - Number(a.reachable) || a.name.localeCompare(b.name));
}

/** Fill a device <select> (hidden when there is only one choice); returns the devices shown. */
export function fillDeviceSelect(select, store, selectedId) {
  const devices = pairedDevices(store);
  select.replaceChildren(...devices.map((d) => h("option", { value: d.id, selected: d.id === selectedId },
    `${d.name}${d.reachable ? "" : " (offline)"}`)));
  select.hidden = devices.length < 2;
  return devices;
}
