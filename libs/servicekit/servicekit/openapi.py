"""The OpenAPI document every service publishes, made to say what the service really answers.

FastAPI documents the responses a route declares and a 422 in a shape the platform never sends.
:func:`complete_document` finishes each operation from what servicekit knows about the route:

- the one error body (:class:`ErrorResponse`, ``{"error": {...}}``) as the named component
  :data:`ERROR_SCHEMA`, used by every 4xx/5xx answer that declares no other body (the 422 of
  request validation included; FastAPI's ``HTTPValidationError`` is dropped);
- 401 (with ``WWW-Authenticate``) and the ``bearerAuth`` security requirement on every operation
  that reads the caller (``CurrentUser``; ``OptionalUser`` makes the requirement optional);
  403 on operations behind :func:`servicekit.auth.require_role`;
- 400 on operations with a request body (FastAPI's answer to one it cannot decode);
- 503 (``Retry-After`` when known) on operations whose dependencies touch PostgreSQL, Redis or
  RabbitMQ (:data:`BACKEND_DEPENDENCIES`); 429 declares ``Retry-After``;
- the route's name (its endpoint function's) as the ``operationId``: stable across path changes,
  and refused when two operations share it.

Statuses a route raises itself (404, 409, ...) are declared on the route (``responses=``), with
the description as the only thing to write: the error body is filled in here. Rules a schema
cannot state (one field's bound depends on another's) belong in the route's or field's
description. 405 answers' ``Allow``
lists the methods the document has for the path (:func:`servicekit.routing.allowed_methods`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute

from servicekit import auth, db, deps

#: Component name of the one error body; the nested object is :data:`ERROR_INFO_SCHEMA`.
ERROR_SCHEMA = "ErrorResponse"
ERROR_INFO_SCHEMA = "ErrorInfo"
#: Name of the security scheme of the platform's access tokens (``Authorization: Bearer <JWT>``).
BEARER_SCHEME = auth.BEARER_SCHEME_NAME
_REF = "#/components/schemas/"
#: FastAPI's own validation-error components, replaced by :data:`ERROR_SCHEMA`.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
#: servicekit dependencies that reach a backend: an operation using one can answer 503.
BACKEND_DEPENDENCIES: frozenset[Callable[..., Any]] = frozenset(
    {
        db.get_session,
        deps.get_redis,
        deps.get_cache,
        deps.get_session_store,
        deps.get_publisher,
        deps.get_sessionmaker,
    }
)
_AUTH_DEPENDENCIES = frozenset({auth.get_current_user, auth.get_optional_user})
#: The description of each status servicekit documents by itself.
DESCRIPTIONS: dict[int, str] = {
    400: "the request cannot be processed as sent (e.g. a body that cannot be decoded)",
    401: "missing, invalid or expired access token, or its session was revoked",
    403: "the caller is not allowed to do this",
    404: "not found",
    409: "conflicts with the current state",
    422: "the request does not match the schema, or breaks a rule the operation describes",
    429: "too many requests; retry after Retry-After seconds",
    503: "a dependency (database, cache, broker or processor) is unavailable; retry later",
}
_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": {
            "description": "the scheme to authenticate with",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
    503: {
        "Retry-After": {
            "description": "seconds to wait before retrying, when known",
            "required": False,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


class ErrorInfo(BaseModel):
    """What went wrong."""

    model_config = ConfigDict(title=ERROR_INFO_SCHEMA)

    code: str = Field(description="machine-readable reason, e.g. `listing_not_found`, `validation_error`")
    message: str = Field(description="human-readable explanation")
    request_id: str = Field(description="the request's X-Request-ID, to quote when reporting a problem")
    details: Any = Field(
        default=None,
        description="extra data; for `validation_error` a list of {loc, msg, type}",
    )


class ErrorResponse(BaseModel):
    """Every error answer of every service: ``{"error": {"code", "message", "request_id", "details"?}}``."""

    model_config = ConfigDict(title=ERROR_SCHEMA)

    error: ErrorInfo


def error_components() -> dict[str, Any]:
    """The JSON schemas of :data:`ERROR_SCHEMA` and :data:`ERROR_INFO_SCHEMA`, as components."""
    schema = ErrorResponse.model_json_schema(ref_template=_REF + "{model}")
    nested = schema.pop("$defs")
    return {ERROR_SCHEMA: schema, **nested}


def install(app: FastAPI) -> None:
    """Make *app*'s ``openapi()`` (and ``/openapi.json``) return the completed document."""
    generate = app.openapi

    @functools.wraps(generate)
    def openapi() -> dict[str, Any]:
        return complete_document(generate(), app.router.routes)

    app.openapi = openapi  # type: ignore[method-assign]


def complete_document(document: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Complete FastAPI's *document* of *routes* in place (idempotent); returns it."""
    paths = document.get("paths", {})
    operation_ids: dict[str, str] = {}
    for route, method in _operations(routes):
        operation = paths[route.path_format][method.lower()]
        _name_operation(operation, route, method, operation_ids)
        _add_dependency_statuses(operation, _calls(route.dependant))
        for status, response in operation.get("responses", {}).items():
            _complete_response(status, response)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas.update(error_components())
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _operations(routes: Sequence[BaseRoute]) -> Iterator[tuple[Any, str]]:
    """(route context, method) of every documented operation, in the document's order."""
    for route in iter_route_contexts(routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                yield route, method


def _name_operation(operation: dict[str, Any], route: Any, method: str, seen: dict[str, str]) -> None:
    name = route.name
    where = f"{method} {route.path_format}"
    if name in seen:
        raise RuntimeError(
            f"operationId '{name}' of {where} is already that of {seen[name]}\n"
            "hint: give each endpoint function of a service a distinct name (or name= on the route)"
        )
    seen[name] = where
    operation["operationId"] = name


def _calls(dependant: Dependant) -> set[Any]:
    """Every dependency callable of *dependant*'s tree."""
    found: set[Any] = set()
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            found.add(dep.call)
        stack.extend(dep.dependencies)
    return found


def _add_dependency_statuses(operation: dict[str, Any], calls: set[Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation:  # FastAPI answers 400 for a body it cannot decode
        responses.setdefault("400", {"description": DESCRIPTIONS[400]})
    if calls & _AUTH_DEPENDENCIES:
        responses.setdefault("401", {"description": DESCRIPTIONS[401]})
        requirement = {BEARER_SCHEME: []}
        if auth.get_current_user in calls:
            operation["security"] = [requirement]
        else:  # OptionalUser only: anonymous callers are served too
            operation["security"] = [{}, requirement]
    if any(getattr(call, auth.ROLE_CHECK_MARK, False) for call in calls):
        responses.setdefault("403", {"description": DESCRIPTIONS[403]})
    if calls & BACKEND_DEPENDENCIES:
        responses.setdefault("503", {"description": DESCRIPTIONS[503]})
    operation["responses"] = dict(sorted(responses.items()))


def _complete_response(status: str, response: dict[str, Any]) -> None:
    if not status.isdigit() or int(status) < 400:
        return
    code = int(status)
    if code == 422 or not response.get("content"):
        response["content"] = {"application/json": {"schema": {"$ref": _REF + ERROR_SCHEMA}}}
    if response.get("description") in {None, "", "Validation Error", "Additional Response"}:
        response["description"] = DESCRIPTIONS.get(code, response.get("description") or "error")
    headers = _HEADERS.get(code)
    if headers:
        response.setdefault("headers", {}).update(headers)
