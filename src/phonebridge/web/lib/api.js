// The daemon's local API: the access token, JSON requests, file uploads and the live event stream.
// (This module lives in lib/ because the daemon guards every path starting with "/api" as API.)
//
// Every request to /api/... carries `Authorization: Bearer TOKEN`; the WebSocket, which cannot
// carry headers, sends it as `?token=`. The daemon only answers same-origin requests on 127.0.0.1.

const TOKEN_KEY = "phonebridge-token";

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

let unauthorizedHandler = () => {};

/** Called whenever the daemon answers 401 (no token, or a stale one). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

// -- the token ------------------------------------------------------------------------------------

/**
 * Take the token from the URL fragment (`#token=...`, as `phonebridge` opens us), remember it and
 * remove the fragment so it does not linger in the address bar; else use the remembered one.
 */
export function initToken() {
  const hash = window.location.hash.replace(/^#/, "");
  if (hash) {
    const params = new URLSearchParams(hash);
    const token = params.get("token");
    if (token !== null) {
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", window.location.pathname + window.location.search +
        (rest ? `#${rest}` : ""));
      if (token) saveToken(token);
    }
  }
  return getToken();
}

export function getToken() {
  try {
    return window.localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function saveToken(token) {
  try {
    window.localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage disabled: the token still lives in memory for this page.
  }
  memoryToken = token;
}

let memoryToken = "";

function currentToken() {
  return getToken() || memoryToken;
}

export function forgetToken() {
  memoryToken = "";
  try {
    window.localStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing to forget
  }
}

export function hasToken() {
  return Boolean(currentToken());
}

// -- requests -------------------------------------------------------------------------------------

/** The user-facing message in an error body: {"error": "..."} or FastAPI's {"detail": ...}. */
export function errorMessage(body, fallback) {
  if (body && typeof body === "object") {
    if (typeof body.error === "string" && body.error) return body.error;
    const detail = body.detail;
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail) && detail.length) {
      return detail.map((item) => {
        if (!item || typeof item !== "object") return String(item);
        const where = Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body").join(".") : "";
        return where ? `${where}: ${item.msg}` : String(item.msg);
      }).join("; ");
    }
    if (detail && typeof detail === "object") return JSON.stringify(detail);
  }
  return fallback;
}

/** A JSON request to the API; throws ApiError with a message fit to show the user. */
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${currentToken()}`, Accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("Cannot reach the PhoneBridge daemon. Is it still running?", 0);
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) {
    unauthorizedHandler();
    throw new ApiError(errorMessage(data, "Missing or wrong API token"), 401);
  }
  if (!response.ok) {
    const fallback = `${method} ${path} failed: HTTP ${response.status} ${response.statusText}`.trim();
    throw new ApiError(errorMessage(data, fallback), response.status);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);

/**
 * POST files as multipart/form-data (field "files"); onProgress(sent, total) as they go up.
 * Resolves with the JSON answer; rejects with an ApiError (XMLHttpRequest: fetch has no upload
 * progress).
 */
export function upload(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${getToken()}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    };
    xhr.onerror = () => reject(new ApiError("Cannot reach the PhoneBridge daemon. Is it still running?", 0));
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      const message = data && (data.error || (typeof data.detail === "string" ? data.detail : null));
      reject(new ApiError(message || `upload failed: HTTP ${xhr.status}`, xhr.status));
    };
    xhr.send(form);
  });
}

/** `/api/devices/ID/action`, with the id escaped. */
export function devicePath(id, action = "") {
  return `/api/devices/${encodeURIComponent(id)}${action ? `/${action}` : ""}`;
}

// -- live events ------------------------------------------------------------------------------------

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

/**
 * The event WebSocket, reconnected with backoff while it drops. Listeners get every event
 * ({type, device, data, time}); `onState` gets "connecting" | "connected" | "disconnected".
 * A reconnect starts with the daemon's "hello" event, on which the app re-reads its state.
 */
export class EventStream {
  constructor({ onEvent, onState }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.state = "disconnected";
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }

  /** Try again now (e.g. the user clicked the indicator). */
  retry() {
    if (this.stopped || this.state === "connected") return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  connect() {
    if (this.stopped) return;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.setState("connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${window.location.host}/api/events?token=${encodeURIComponent(currentToken())}`;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "hello") {
        this.attempt = 0;
        this.setState("connected");
      }
      this.onEvent(event);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setState("disconnected");
      this.scheduleReconnect();
    };
    socket.onerror = () => {
      // onclose follows and reconnects
    };
  }

  async scheduleReconnect() {
    if (this.stopped) return;
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      // The daemon closes the socket on a wrong token without telling why: ask over HTTP first,
      // which reports 401 (and stops us through the unauthorized handler).
      try {
        await get("/api/status");
      } catch (error) {
        if (error.status === 401) {
          this.stop();
          return;
        }
        if (!this.stopped) this.scheduleReconnect();
        return;
      }
      this.connect();
    }, delay);
  }
}
