"""Guards of the local API, as pure ASGI middleware so they cover HTTP and WebSocket alike.

1. Host must name the loopback API itself (127.0.0.1:PORT or localhost:PORT): this defeats DNS
   rebinding, where a web page's own host name is made to resolve to 127.0.0.1.
2. An Origin header, when present, must be that same origin: other web pages cannot drive the API.
3. Everything under /api/ needs the token: `Authorization: Bearer TOKEN`, or `?token=` on the
   WebSocket (browsers cannot set headers there). The static UI and /openapi.json need none.
4. Responses forbid framing by other sites (clickjacking).
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send


class LocalGuard:
    def __init__(self, app: ASGIApp, *, port: int, token: str) -> None:
        self.app = app
        self.token = token.encode()
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("host", "") not in self.hosts:
            await _deny(scope, receive, send, 421, "request for an unexpected Host")
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            await _deny(scope, receive, send, 403, "cross-origin request refused")
            return
        path = scope["path"]
        if (path == "/api" or path.startswith("/api/")) and not self._authorized(scope, headers):
            await _deny(scope, receive, send, 401, "missing or wrong API token")
            return
        if scope["type"] == "http":
            send = _with_security_headers(send)
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        candidate = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not candidate and scope["type"] == "websocket":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            candidate = (query.get("token") or [""])[0]
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token)


SECURITY_HEADERS = [
    # No other site may frame the UI (clickjacking of Pair/Accept/Unpair).
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
        await send(message)

    return wrapped


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4000 + status})
        return
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
