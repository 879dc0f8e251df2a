"""Errors a service raises, and the handlers that turn every failure into one JSON shape.

Every error body is ``{"error": {"code", "message", "request_id", "details"?}}``.
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


class Unavailable(ServiceError):  # noqa: N818 - HTTP status names
    """A dependency is down (503)."""

    status_code = 503
    code = "unavailable"


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


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in the one shape.

    Unexpected exceptions are rendered by the request middleware (500, no internals leaked).
    """
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
