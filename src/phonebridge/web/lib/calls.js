// The incoming-call banner, shown on every page: the app shell mounts it once and hands it every
// event. It reads calls in progress from /api/calls/current, follows "call.changed", and offers
// "Mute" (the phone's ringer) while a call rings.

import { h } from "./ui.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** A phone-handset icon (ui.js has none; same 24x24 stroke style). */
export function callIcon(cls = "") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon ${cls}`.trim());
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", "M5 3.5h3.5l1.8 4.6-2.3 1.5a11 11 0 0 0 6.4 6.4l1.5-2.3 4.6 1.8V19a2 2 0 0 1-2 2A16.5 16.5 0 0 1 3 5.5a2 2 0 0 1 2-2z");
  svg.append(path);
  return svg;
}

/** "data:" URL of a contact photo sent as base64 (Android: JPEG; the demo: PNG). */
export function photoUrl(base64) {
  if (!base64) return null;
  const type = base64.startsWith("iVBOR") ? "image/png" : "image/jpeg";
  return `data:${type};base64,${base64}`;
}

export function callerName(call) {
  if (call.name && call.number && call.name !== call.number) return call.name;
  return call.name || call.number || "Unknown number";
}

export function mountCallBanner(ctx) {
  const { get, post, devicePath, store, toastError } = ctx;
  const calls = new Map(); // device id -> call
  const muted = new Set(); // device ids whose ringer we muted during this call
  const root = h("div.call-banners", { "aria-live": "assertive", dataset: { testid: "call-banners" } });
  document.body.append(root);

  function render() {
    root.replaceChildren(...[...calls.entries()].map(([device, call]) => {
      const ringing = call.event === "ringing";
      const photo = photoUrl(call.thumbnail);
      const mute = h("button.btn.btn-secondary.call-mute", {
        type: "button", dataset: { testid: "call-mute" }, disabled: muted.has(device),
        onclick: async () => {
          mute.disabled = true;
          try {
            await post(devicePath(device, "mute"), {});
            muted.add(device);
            render();
          } catch (error) {
            mute.disabled = false;
            toastError(error, "Mute the ringer");
          }
        },
      }, muted.has(device) ? "Muted" : "Mute");
      return h(`div.call-banner${ringing ? ".call-ringing" : ""}`, {
        role: "status", dataset: { testid: "call-banner", event: call.event, device },
      },
      photo ? h("img.call-photo", { src: photo, alt: "" }) : h("span.call-photo", {}, callIcon()),
      h("div.call-text", {},
        h("span.call-kind", {}, ringing ? `Incoming call · ${store.deviceName(device)}`
          : `On a call · ${store.deviceName(device)}`),
        h("strong.call-who", { dataset: { testid: "call-who" } }, callerName(call)),
        call.name && call.number && call.name !== call.number ? h("span.call-number", {}, call.number) : null),
      ringing ? mute : null);
    }));
  }

  async function load() {
    try {
      const current = await get("/api/calls/current");
      calls.clear();
      for (const call of current) calls.set(call.device, call);
      render();
    } catch {
      // The banner is a convenience: the next event or reconnect fills it.
    }
  }

  return {
    onEvent(event) {
      if (event.type === "hello" || event.type === "resync") {
        load();
      } else if (event.type === "call.changed") {
        const data = event.data || {};
        if (data.active) {
          if (data.event === "ringing" && !calls.has(event.device)) muted.delete(event.device);
          calls.set(event.device, data);
        } else {
          calls.delete(event.device);
          muted.delete(event.device);
        }
        render();
      } else if (event.type === "device.removed") {
        calls.delete(event.device);
        render();
      }
    },
  };
}
