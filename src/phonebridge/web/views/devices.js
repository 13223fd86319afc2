// The Devices page: paired and available devices, pairing, ping and ring, refresh and
// connect-by-address. Renders from the shared store; cards are rebuilt only when their device
// changed, so focus and hover survive unrelated updates.

import { deviceIcon, h, icon } from "../lib/ui.js";

const PING_MESSAGE = "Ping from PhoneBridge";

const TYPE_NAMES = { phone: "Phone", tablet: "Tablet", laptop: "Laptop", desktop: "Desktop", tv: "TV" };

const PAIR_STATE_TEXT = {
  paired: "Paired",
  unpaired: "Not paired",
  requested: "Pair request sent",
  incoming: "Wants to pair",
};

function typeName(type) {
  return TYPE_NAMES[type] || (type ? type[0].toUpperCase() + type.slice(1) : "Device");
}

function isPairedSection(device) {
  return device.paired || device.certificate_changed;
}

function byName(a, b) {
  return a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || a.id.localeCompare(b.id);
}

function relativeTime(ms) {
  if (!ms) return "";
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return new Date(ms).toLocaleDateString();
}

function secondsLeft(deadline) {
  return Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
}

// -- pieces of a card -----------------------------------------------------------------------------

function batteryView(battery) {
  const charge = Math.max(0, Math.min(100, Number(battery.charge) || 0));
  const level = charge <= 15 ? "low" : charge <= 35 ? "mid" : "ok";
  const fill = h("span.battery-fill");
  fill.style.width = `${charge}%`;
  return h(`div.stat.battery.battery-${level}`, {
    dataset: { testid: "battery", charge: String(charge), charging: String(Boolean(battery.charging)) },
    title: `Battery ${charge}%${battery.charging ? ", charging" : ""}`,
  },
  h("span.battery-glyph", { "aria-hidden": "true" }, fill, battery.charging ? icon("bolt", "battery-bolt") : null),
  h("span.stat-value", {}, `${charge}%`),
  h("span.stat-label", {}, battery.charging ? "Charging" : "Battery"));
}

function signalBars(strength) {
  const bars = h("span.signal-bars", { "aria-hidden": "true" });
  for (let i = 1; i <= 4; i += 1) {
    bars.append(h(`span.bar.bar-${i}`, { class: strength !== null && strength >= i ? "on" : "" }));
  }
  return bars;
}

function connectivityView(connectivity) {
  const entries = Object.entries(connectivity || {});
  if (!entries.length) return null;
  return entries.map(([sub, info]) => {
    const strength = info && Number.isInteger(info.signal_strength) ? info.signal_strength : null;
    const network = (info && info.network_type) || "Unknown";
    return h("div.stat.connectivity", {
      dataset: { testid: "connectivity", subscription: sub, strength: strength === null ? "" : String(strength) },
      title: `Mobile network ${network}, signal ${strength === null ? "unknown" : `${strength} of 4`}`,
    },
    signalBars(strength),
    h("span.stat-value", {}, network),
    h("span.stat-label", {}, "Signal"));
  });
}

// -- the page -------------------------------------------------------------------------------------

export default {
  id: "devices",
  title: "Devices",
  icon: "devices",

  mount(root, ctx) {
    const { store, post, devicePath, toast, toastError, applyResult } = ctx;
    const busy = new Map(); // device id -> action running
    const cards = new Map(); // device id -> {el, sig}

    // header ---------------------------------------------------------------------------------
    const computerName = h("span.computer-name", { dataset: { testid: "computer-name" } }, "…");
    const computerId = h("code.computer-id", { dataset: { testid: "computer-id" } }, "");
    const refreshButton = h("button.btn.btn-secondary", {
      type: "button", dataset: { testid: "refresh-button" }, onclick: refresh,
      title: "Announce this computer on the network again",
    }, icon("refresh"), h("span", {}, "Refresh"));
    const header = h("header.page-header", {},
      h("div.page-heading", {},
        h("h1", {}, "Devices"),
        h("p.this-computer", { dataset: { testid: "this-computer" } },
          icon("desktop"), h("span", {}, "This computer:"), computerName, computerId)),
      h("div.page-actions", {}, refreshButton));

    // sections -------------------------------------------------------------------------------
    const pairedList = h("div.device-grid", { dataset: { testid: "paired-list" } });
    const availableList = h("div.device-grid", { dataset: { testid: "available-list" } });
    const pairedCount = h("span.count", {}, "0");
    const availableCount = h("span.count", {}, "0");
    const pairedEmpty = h("div.empty", { dataset: { testid: "paired-empty" } },
      h("strong", {}, "No paired devices yet."),
      h("span", {}, " Pair a device from the list below, or start KDE Connect on your phone and "
        + "pick this computer there."));
    const availableEmpty = h("div.empty", { dataset: { testid: "available-empty" } });
    const pairedSection = h("section.section",
      { dataset: { testid: "paired-devices" }, "aria-labelledby": "paired-title" },
      h("h2.section-title", { id: "paired-title" }, "Paired devices", pairedCount),
      pairedEmpty, pairedList);
    const availableSection = h("section.section",
      { dataset: { testid: "available-devices" }, "aria-labelledby": "available-title" },
      h("h2.section-title", { id: "available-title" }, "Available devices", availableCount),
      availableEmpty, availableList);

    // connect form ---------------------------------------------------------------------------
    const hostInput = h("input", {
      type: "text", name: "host", required: true, placeholder: "192.168.1.20 or phone.example.lan",
      autocomplete: "off", spellcheck: "false", dataset: { testid: "connect-host" }, id: "connect-host",
    });
    const portInput = h("input", {
      type: "number", name: "port", min: "1", max: "65535", value: "1716",
      dataset: { testid: "connect-port" }, id: "connect-port",
    });
    const connectButton = h("button.btn.btn-primary", { type: "submit", dataset: { testid: "connect-button" } },
      icon("link"), h("span", {}, "Connect"));
    const connectForm = h("form.connect-form", { dataset: { testid: "connect-form" }, onsubmit: connect },
      h("div.field.field-host", {}, h("label", { for: "connect-host" }, "Address"), hostInput),
      h("div.field.field-port", {}, h("label", { for: "connect-port" }, "Port"), portInput),
      h("div.field.field-submit", {}, connectButton));
    const connectSection = h("section.section.connect", { "aria-labelledby": "connect-title" },
      h("h2.section-title", { id: "connect-title" }, "Connect by address"),
      h("div.panel", {},
        h("p.hint", {}, "For a device on another network (VPN, another subnet) that discovery cannot "
          + "see. KDE Connect listens on port 1716."),
        connectForm));

    root.append(header, pairedSection, availableSection, connectSection);

    // actions ----------------------------------------------------------------------------------
    async function act(device, action, run) {
      if (busy.has(device.id)) return;
      busy.set(device.id, action);
      render();
      try {
        await run();
      } catch (error) {
        toastError(error, `${actionTitle(action)} ${device.name}`);
      } finally {
        busy.delete(device.id);
        render();
      }
    }

    function actionTitle(action) {
      return { pair: "Pair with", accept: "Accept", reject: "Reject", cancel: "Cancel pairing with",
        unpair: "Unpair", ping: "Ping", ring: "Ring" }[action] || action;
    }

    const actions = {
      pair: (d) => act(d, "pair", async () => applyResult(await post(devicePath(d.id, "pair"), {}))),
      accept: (d) => act(d, "accept", async () => applyResult(await post(devicePath(d.id, "pair"), {}))),
      // The outcome of pairing actions is told by the "pair.changed" event (app.js).
      reject: (d) => act(d, "reject", async () => applyResult(await post(devicePath(d.id, "reject"), {}))),
      cancel: (d) => act(d, "cancel", async () => applyResult(await post(devicePath(d.id, "unpair"), {}))),
      unpair: (d) => act(d, "unpair", async () => applyResult(await post(devicePath(d.id, "unpair"), {}))),
      ping: (d) => act(d, "ping", async () => {
        await post(devicePath(d.id, "ping"), { message: PING_MESSAGE });
        toast(`Ping sent to ${d.name}`, "success");
      }),
      ring: (d) => act(d, "ring", async () => {
        await post(devicePath(d.id, "ring"), {});
        toast(`Ringing ${d.name}`, "success");
      }),
    };

    async function refresh() {
      refreshButton.disabled = true;
      refreshButton.classList.add("spinning");
      try {
        await post("/api/refresh", {});
        const discovery = store.status ? store.status.discovery : true;
        toast(discovery ? "Announced this computer on the network again"
          : "Discovery is off on this daemon: connect to devices by address", discovery ? "success" : "info");
        await store.loadDevices();
      } catch (error) {
        toastError(error, "Refresh");
      } finally {
        refreshButton.disabled = false;
        refreshButton.classList.remove("spinning");
      }
    }

    async function connect(event) {
      event.preventDefault();
      let host = hostInput.value.trim();
      let port = Number(portInput.value || 1716);
      const withPort = host.match(/^([^:\s]+):(\d{1,5})$/);
      if (withPort) {
        host = withPort[1];
        port = Number(withPort[2]);
      }
      if (!host) {
        toast("Enter the device's address", "error");
        return;
      }
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        toast("The port must be a number from 1 to 65535", "error");
        return;
      }
      connectButton.disabled = true;
      connectButton.classList.add("busy");
      try {
        const device = await post("/api/connect", { host, port });
        applyResult(device);
        toast(`Connected to ${device.name}${device.paired ? "" : ": pair it to use it"}`, "success");
        hostInput.value = "";
      } catch (error) {
        toastError(error, `Connect to ${host}:${port}`);
      } finally {
        connectButton.disabled = false;
        connectButton.classList.remove("busy");
      }
    }

    // cards --------------------------------------------------------------------------------------
    function button(device, action, label, kind, { disabled = false, title = "" } = {}) {
      const running = busy.get(device.id);
      return h(`button.btn.${kind}`, {
        type: "button",
        dataset: { testid: `${action}-button`, action },
        disabled: disabled || Boolean(running),
        title: title || null,
        class: running === action ? "busy" : "",
        onclick: () => actions[action](device),
      }, label);
    }

    function card(device) {
      const state = device.pair_state;
      const pending = state === "incoming" || state === "requested";
      const usable = device.paired && device.reachable;

      const statusPill = h(`span.pill.${device.reachable ? "pill-online" : "pill-offline"}`, {
        dataset: { testid: "device-reachable", reachable: String(device.reachable) },
      }, h("span.dot"), device.reachable ? "Reachable" : "Unreachable");

      const meta = [typeName(device.type), `protocol ${device.protocol_version}`];
      if (!device.reachable && device.last_seen) meta.push(`seen ${relativeTime(device.last_seen)}`);

      const top = h("div.card-top", {},
        h(`div.avatar.avatar-${device.reachable ? "on" : "off"}`, { title: typeName(device.type) }, deviceIcon(device.type)),
        h("div.card-title", {},
          h("h3.device-name", { dataset: { testid: "device-name" } }, device.name),
          h("p.device-meta", { dataset: { testid: "device-meta" } }, meta.join(" · "))),
        statusPill);

      const badge = h(`span.badge.badge-${state}`, { dataset: { testid: "pair-state", state } },
        PAIR_STATE_TEXT[state] || state);

      const stats = [];
      if (device.battery) stats.push(batteryView(device.battery));
      const signal = connectivityView(device.connectivity);
      if (signal) stats.push(...signal);

      const body = [h("div.card-badges", {}, badge,
        device.paired && device.verification_key
          ? h("span.key-small", { dataset: { testid: "verification-key-small" }, title: "Verification key of the pairing" },
            icon("key"), `Key ${device.verification_key}`)
          : null)];

      if (stats.length) body.push(h("div.stats", {}, stats));

      if (pending && !device.certificate_changed) {
        const countdown = device.pair_deadline
          ? h("span.countdown", { dataset: { deadline: String(device.pair_deadline) } },
            `${secondsLeft(device.pair_deadline)} s left`)
          : null;
        body.push(h("div.verify", { dataset: { testid: "verification-key" } },
          h("p.verify-title", {}, state === "incoming"
            ? `${device.name} wants to pair with this computer.` : `Waiting for ${device.name} to accept…`,
          countdown ? " " : null, countdown),
          h("p.verify-text", {}, "Check the same code is shown on the phone: ",
            h("strong.verify-code", { dataset: { testid: "verification-code" } }, device.verification_key || "—"))));
      }

      if (device.certificate_changed) {
        body.push(h("div.alert.alert-danger", { role: "alert", dataset: { testid: "certificate-warning" } },
          icon("shield"), h("span", {}, "Certificate changed — refused. Unpair to pair again.")));
      } else if (device.refused_reason) {
        body.push(h("div.alert.alert-warning", { role: "status", dataset: { testid: "refused-warning" } },
          icon("warning"), h("span", {}, `Connection refused: ${device.refused_reason}.`)));
      }

      const buttons = [];
      if (device.certificate_changed) {
        buttons.push(button(device, "unpair", "Unpair", "btn-danger"));
      } else if (state === "incoming") {
        buttons.push(button(device, "accept", "Accept", "btn-primary", { disabled: !device.reachable }));
        buttons.push(button(device, "reject", "Reject", "btn-secondary"));
      } else if (state === "requested") {
        buttons.push(button(device, "cancel", "Cancel", "btn-secondary"));
      } else if (device.paired) {
        const why = device.reachable ? "" : `${device.name} is not reachable`;
        buttons.push(button(device, "ping", "Ping", "btn-primary", { disabled: !usable, title: why }));
        buttons.push(button(device, "ring", "Ring", "btn-secondary", { disabled: !usable, title: why }));
        buttons.push(h("span.spacer"));
        buttons.push(button(device, "unpair", "Unpair", "btn-ghost"));
      } else {
        buttons.push(button(device, "pair", "Pair", "btn-primary", {
          disabled: !device.reachable, title: device.reachable ? "" : `${device.name} is not reachable`,
        }));
      }

      return h("article.card", {
        class: [device.certificate_changed ? "card-danger" : "", pending ? "card-pending" : "",
          device.reachable ? "" : "card-offline"].join(" "),
        dataset: {
          testid: "device-card", deviceId: device.id, pairState: state,
          reachable: String(device.reachable), paired: String(device.paired),
        },
        "aria-label": device.name,
      }, top, ...body, h("div.card-actions", {}, buttons));
    }

    function signature(device) {
      const { last_seen: _ignored, ...rest } = device;
      return JSON.stringify([rest, busy.get(device.id) || null,
        !device.reachable && device.last_seen ? relativeTime(device.last_seen) : ""]);
    }

    function place(list, devices) {
      const wanted = devices.map((device) => {
        const sig = signature(device);
        let entry = cards.get(device.id);
        if (!entry || entry.sig !== sig) {
          const el = card(device);
          if (entry) entry.el.replaceWith(el);
          else el.classList.add("card-new"); // only a new card fades in, not an updated one
          entry = { el, sig };
          cards.set(device.id, entry);
        }
        return entry.el;
      });
      wanted.forEach((el, index) => {
        if (list.children[index] !== el) list.insertBefore(el, list.children[index] || null);
      });
      while (list.children.length > wanted.length) list.lastElementChild.remove();
    }

    function render() {
      const status = store.status;
      if (status) {
        computerName.textContent = status.name;
        computerId.textContent = status.id;
        computerId.title = `Device id ${status.id} · PhoneBridge ${status.version}`;
      }
      const all = [...store.devices.values()];
      for (const id of [...cards.keys()]) {
        if (!store.devices.has(id)) {
          cards.get(id).el.remove();
          cards.delete(id);
        }
      }
      const paired = all.filter(isPairedSection).sort(byName);
      const rank = { incoming: 0, requested: 1, unpaired: 2 };
      const available = all.filter((d) => !isPairedSection(d))
        .sort((a, b) => (rank[a.pair_state] ?? 3) - (rank[b.pair_state] ?? 3) || byName(a, b));
      place(pairedList, paired);
      place(availableList, available);
      pairedCount.textContent = String(paired.length);
      availableCount.textContent = String(available.length);
      pairedEmpty.hidden = paired.length > 0 || !store.loaded;
      availableEmpty.hidden = available.length > 0 || !store.loaded;
      const discovery = !status || status.discovery;
      availableEmpty.replaceChildren(
        h("strong", {}, discovery ? "No other devices found." : "Discovery is off."),
        h("span", {}, discovery
          ? " Open KDE Connect on your phone on the same network, click Refresh, or connect by address below."
          : " This daemon does not look for devices on the network: connect to one by address below."));
    }

    // pair deadlines count down, "seen … ago" ages
    const ticker = setInterval(() => {
      for (const el of root.querySelectorAll("[data-deadline]")) {
        el.textContent = `${secondsLeft(Number(el.dataset.deadline))} s left`;
      }
    }, 1000);
    const ager = setInterval(render, 30000);

    const unsubscribe = store.subscribe(render);
    render();

    return {
      unmount() {
        clearInterval(ticker);
        clearInterval(ager);
        unsubscribe();
      },
    };
  },
};
