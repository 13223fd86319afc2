// Shared state of the UI: the daemon's status and its devices, kept live by the event stream.
// Pages read from here and subscribe to changes instead of polling the API.

import { get } from "./api.js";

export class Store {
  constructor() {
    this.status = null;
    this.devices = new Map();
    this.loaded = false;
    this.listeners = new Set();
    this.loading = null;
    this.touched = null; // ids changed by events while a full load is in flight
    this.reloadAgain = false; // a load was asked for while one was running
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(what) {
    for (const listener of [...this.listeners]) {
      try {
        listener(what);
      } catch (error) {
        console.error(error);
      }
    }
  }

  setStatus(status) {
    this.status = status;
    this.emit("status");
  }

  async loadStatus() {
    this.setStatus(await get("/api/status"));
    return this.status;
  }

  /** Re-read every device. Events that arrive meanwhile win over the (maybe older) snapshot. */
  async loadDevices() {
    if (this.loading) {
      this.reloadAgain = true;
      return this.loading;
    }
    this.touched = new Map();
    this.loading = (async () => {
      try {
        const list = await get("/api/devices");
        const next = new Map(list.map((d) => [d.id, d]));
        for (const [id, device] of this.touched) {
          if (device) next.set(id, device);
          else next.delete(id);
        }
        this.devices = next;
        this.loaded = true;
        this.emit("devices");
      } finally {
        this.touched = null;
        this.loading = null;
      }
      if (this.reloadAgain) {
        this.reloadAgain = false;
        await this.loadDevices();
      }
    })();
    return this.loading;
  }

  device(id) {
    return this.devices.get(id);
  }

  deviceName(id) {
    const device = id ? this.devices.get(id) : null;
    return device ? device.name : "A device";
  }

  upsert(device) {
    if (!device || !device.id) return;
    // The daemon forgets an unpaired device once its link is gone, and may send one last
    // "device.changed" for it after "device.removed": such a device no longer exists.
    if (!device.paired && !device.reachable && !device.certificate_changed &&
        device.pair_state === "unpaired") {
      this.remove(device.id);
      return;
    }
    if (this.touched) this.touched.set(device.id, device);
    this.devices.set(device.id, device);
    this.emit("devices");
  }

  remove(id) {
    if (this.touched) this.touched.set(id, null);
    if (this.devices.delete(id)) this.emit("devices");
  }
}
