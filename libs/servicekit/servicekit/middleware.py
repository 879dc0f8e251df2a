"""ASGI middleware: request id, access log, HTTP metrics, CORS and the last-resort 500 (or 503 when a
dependency is unreachable)."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import RETRY_AFTER_S, error_body, unavailable_dependency
from servicekit.logging import DirectLogger, get_logger, reset_request_id, set_request_id
from servicekit.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
#: An incoming request id is reused only when it looks like one (bounded, no control characters).
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: Paths not logged at INFO (probes and scrapes would drown the access log).
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's full path template (bounded cardinality), or ``unmatched``.

    FastAPI (0.163+) matches an included router's routes in place, so ``scope["route"]`` is the
    route as declared, without the prefixes it was included under; the full template is on the
    effective route FastAPI recorded under ``scope["fastapi"]``.
    """
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(effective, "path_format", None)
    if not path:
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not path:
        return "unmatched"
    root = scope.get("root_path", "")
    return f"{root}{path}" if root and not path.startswith(root) else path


def new_request_id() -> str:
    """A fresh request id: 32 random hex characters. A correlation id, not a secret: drawn from
    ``random`` (reseeded in forked workers) instead of a ``getrandom`` system call per request."""
    return f"{random.getrandbits(128):032x}"


class RequestContextMiddleware:
    """Assigns the request id, logs and measures every request, renders unexpected errors as 500.

    With *cors* (``CORSMiddleware`` options), CORS is answered in the same layer, as if Starlette's
    ``CORSMiddleware`` wrapped this middleware: requests with an ``Origin`` header (and preflights,
    which it answers itself) go through Starlette's middleware; without one (server-to-server calls,
    the gateway's proxied traffic, probes) Starlette's middleware would only merge ``Origin`` into
    ``Vary``, yet parse the request headers and wrap the response on every request (~10 us), so
    that merge is done here directly, in the one ``send`` wrapper this layer has anyway.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, cors: dict[str, Any] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.log = get_logger("servicekit.access")
        self.access = DirectLogger("servicekit.access")  # the per-request line, rendered directly
        self.cors = CORSMiddleware(self._cross_origin, **cors) if cors else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._websocket(scope, receive, send)
            return
        incoming: bytes | None = None
        origin = False
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                if incoming is None:
                    incoming = value
            elif key == b"origin":
                origin = True
        if origin and self.cors is not None:
            await self.cors(scope, receive, send)
            return
        request_id = _valid_request_id(incoming) or new_request_id()
        await self._serve(scope, receive, send, request_id, merge_vary=self.cors is not None)

    async def _cross_origin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Behind Starlette's CORS middleware (requests with an ``Origin``)."""
        request_id = _incoming_request_id(scope) or new_request_id()
        await self._serve(scope, receive, send, request_id, merge_vary=False)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, *, merge_vary: bool
    ) -> None:
        token = set_request_id(request_id)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": vary_origin(headers) if merge_vary else headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None:
                self.log.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
                status = 500
                if not started:
                    body = error_body("internal_error", "internal server error")
                    await _send_json(send_wrapper, 500, body, request_id)
            else:  # an outage, not a bug: 503 + Retry-After so clients (and the gateway) retry
                self.log.warning(
                    "dependency_unavailable",
                    dependency=dependency,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    path=scope.get("path"),
                )
                self.metrics.count_unavailable(dependency)
                status = 503
                if not started:
                    body = error_body("unavailable", f"{dependency} is unavailable; retry later")
                    body["error"]["details"] = {"dependency": dependency}
                    retry = [(b"retry-after", str(RETRY_AFTER_S).encode())]
                    await _send_json(send_wrapper, 503, body, request_id, retry)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.observe_request(method, route, status, elapsed)
            quiet = scope.get("path") in QUIET_PATHS and status < 500
            (self.access.debug if quiet else self.access.info)(
                "request",
                method=method,
                path=scope.get("path"),
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=(scope.get("client") or (None,))[0],
            )
            reset_request_id(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        token = set_request_id(_incoming_request_id(scope) or new_request_id())
        try:
            await self.app(scope, receive, send)
        finally:
            reset_request_id(token)


def vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """*headers* with ``Origin`` appended to ``Vary`` the way Starlette's ``MutableHeaders`` sets it:
    all ``vary`` values joined into the first one's place (or appended), the others removed."""
    found = [index for index, (key, _) in enumerate(headers) if key == b"vary"]
    joined = b", ".join([*(headers[index][1] for index in found), b"Origin"])
    for index in reversed(found[1:]):
        del headers[index]
    if found:
        headers[found[0]] = (b"vary", joined)
    else:
        headers.append((b"vary", joined))
    return headers


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            return _valid_request_id(value)
    return None


def _valid_request_id(value: bytes | None) -> str | None:
    """*value* as a request id when it looks like one (bounded, no control characters)."""
    if value is None:
        return None
    candidate = value.decode("latin-1")
    return candidate if _VALID_REQUEST_ID.match(candidate) else None


async def _send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    request_id: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
