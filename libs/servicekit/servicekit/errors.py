"""Errors a service raises, and the handlers that turn every failure into one JSON shape.

Every error body is ``{"error": {"code", "message", "request_id", "details"?}}``.

A dependency that cannot be reached (PostgreSQL, Redis, RabbitMQ: connection refused, reset, timed
out) answers **503** with ``Retry-After`` and code ``unavailable`` - never 500 - so clients can tell
an outage from a bug and the gateway can serve its stale cache (it does so for 502/503/504).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.logging import current_request_id
from servicekit.routing import allowed_methods

#: Error codes for plain HTTP statuses (e.g. a 404 from an unknown path or a 405).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ServiceError(Exception):
    """Base of the errors a handler raises on purpose; rendered with its status and code."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if code:
            self.code = code


class BadRequest(ServiceError):  # noqa: N818 - HTTP status names
    """The request is well-formed but cannot be processed (400)."""


class Unauthorized(ServiceError):  # noqa: N818 - HTTP status names
    """Missing or invalid credentials (401, with ``WWW-Authenticate: Bearer``)."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "authentication required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(ServiceError):  # noqa: N818 - HTTP status names
    """Authenticated but not allowed (403)."""

    status_code = 403
    code = "forbidden"


class NotFound(ServiceError):  # noqa: N818 - HTTP status names
    """The resource does not exist (404)."""

    status_code = 404
    code = "not_found"


class Conflict(ServiceError):  # noqa: N818 - HTTP status names
    """The request conflicts with the current state, e.g. a duplicate (409)."""

    status_code = 409
    code = "conflict"


class RateLimited(ServiceError):  # noqa: N818 - HTTP status names
    """Too many requests (429, with ``Retry-After``)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str = "too many requests", *, retry_after: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(message, **kwargs)


#: Seconds a client is told to wait (``Retry-After``) when a dependency is unavailable.
RETRY_AFTER_S = 5


class Unavailable(ServiceError):  # noqa: N818 - HTTP status names
    """A dependency is down (503, with ``Retry-After``)."""

    status_code = 503
    code = "unavailable"

    def __init__(
        self, message: str = "a dependency is unavailable", *, retry_after: int = RETRY_AFTER_S, **kwargs: Any
    ) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(message, **kwargs)


def unavailable_dependency(exc: BaseException) -> str | None:
    """The dependency (``postgres``/``redis``/``rabbitmq``) an exception says is unreachable, or None.

    Connection-level failures only: a constraint violation or a bad query stays a bug (500/409).
    """
    import redis.exceptions as redis_errors
    from sqlalchemy import exc as sa_errors

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_errors.DBAPIError) and current.connection_invalidated:
            return "postgres"
        if isinstance(
            current, sa_errors.OperationalError | sa_errors.InterfaceError | sa_errors.TimeoutError
        ):
            return "postgres"
        if isinstance(current, sa_errors.DisconnectionError):
            return "postgres"
        if isinstance(current, redis_errors.ConnectionError | redis_errors.TimeoutError):
            return "redis"
        if isinstance(current, redis_errors.BusyLoadingError):
            return "redis"
        module = type(current).__module__
        if module.startswith(("aiormq", "aio_pika", "pamqp")) and "Connection" in type(current).__name__:
            return "rabbitmq"
        if module.startswith("asyncpg") and isinstance(current, OSError | ConnectionError):
            return "postgres"
        if isinstance(current, ConnectionError | TimeoutError):
            return _dependency_of(current)
        current = current.__cause__ or current.__context__
    return None


def _dependency_of(exc: BaseException) -> str:
    """Best guess for a bare socket error: the innermost frame's package names the client."""
    tb = exc.__traceback__
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    for name in reversed(names):
        for prefix, dependency in (
            ("asyncpg", "postgres"),
            ("sqlalchemy", "postgres"),
            ("redis", "redis"),
            ("aiormq", "rabbitmq"),
            ("aio_pika", "rabbitmq"),
        ):
            if name.startswith(prefix):
                return dependency
    return "dependency"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one JSON error shape, carrying the current request id."""
    error: dict[str, Any] = {"code": code, "message": message, "request_id": current_request_id()}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSONResponse in the one error shape."""
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return error_response(422, "validation_error", "request validation failed", details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method the path has (the document's), not the first route's
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope["path"]))
    return error_response(exc.status_code, code, message, headers=headers)


def unavailable_response(dependency: str) -> JSONResponse:
    """503 + ``Retry-After`` in the one error shape, naming the unreachable dependency."""
    return error_response(
        503,
        "unavailable",
        f"{dependency} is unavailable; retry later",
        {"dependency": dependency},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in the one shape.

    Unexpected exceptions are rendered by the request middleware: 503 + ``Retry-After`` when they
    say a dependency is unreachable (:func:`unavailable_dependency`), else 500 (no internals leaked).
    """
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
