"""Adding a service's routers to its app as flat routes.

FastAPI (0.163+) keeps an included router as one ``_IncludedRouter`` entry of the app: every request
is matched against the included router's routes twice (once to pick the router, once inside it),
with the bookkeeping of FastAPI's effective-route contexts each time — ~15% of the CPU of a cached
read in marketplace-svc. :func:`add_router` adds each route of a plain router to the app itself
instead, with the settings the route already carries (the router's prefix, tags, dependencies,
responses... were merged into each route when it was declared), which is what ``include_router``
did before FastAPI 0.163. Matching order, OpenAPI document and behaviour stay the same.

:func:`add_routes_in_order` puts the service's routes ahead of the platform's and FastAPI's docs
routes (each route ahead of the one a request is for costs a match attempt) and checks that no
service route shadows a platform route.

The lean handler (:class:`LeanRoute`) is opt-in: an endpoint decorated with :func:`lean` gets it, and
app creation refuses (``RuntimeError``) a lean endpoint that is not eligible, sits on a router that
cannot be flattened, or an app with FastAPI's native telemetry on. Nothing switches it off silently.
:data:`COPIED_ROUTE_ARGUMENTS` names what :func:`add_router` copies; a test compares it with
``APIRouter.add_api_route``'s signature, so a FastAPI upgrade that adds an argument fails CI.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi import routing as fastapi_routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import get_typed_return_annotation, request_params_to_args
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, compile_path

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])
_LEAN_MARK = "__servicekit_lean__"
#: ``add_api_route`` keyword arguments :func:`add_router` copies from the declared route by name. The
#: two others are set differently: ``tags`` (copied as a list) and ``route_class_override``.
COPIED_ROUTE_ARGUMENTS = (
    "response_model",
    "status_code",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "name",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
    "strict_content_type",
)
SPECIAL_ROUTE_ARGUMENTS = ("tags", "route_class_override")


def lean(endpoint: EndpointT) -> EndpointT:
    """Opt *endpoint* in to the lean handler (:class:`LeanRoute`); put it under the route decorator::

        @router.get("/{item_id}", response_model=ItemOut)
        @lean
        async def read_item(item_id: uuid.UUID, request: Request) -> Response: ...

    App creation refuses an endpoint that is not :func:`lean_eligible` (with the reason)."""
    setattr(endpoint, _LEAN_MARK, True)
    return endpoint


def wants_lean(route: BaseRoute) -> bool:
    """True when *route*'s endpoint was decorated with :func:`lean`."""
    return bool(getattr(getattr(route, "endpoint", None), _LEAN_MARK, False))


_DEFAULT_LIFESPAN = type(APIRouter().lifespan_context)


def flattenable(router: APIRouter) -> bool:
    """True when every route of *router* can be re-declared on the app with the same meaning: only
    HTTP routes (no streaming ones) and websocket routes, and no lifespan or event handlers."""
    if router.on_startup or router.on_shutdown:
        return False
    if not isinstance(router.lifespan_context, _DEFAULT_LIFESPAN):
        return False
    for route in router.routes:
        if type(route) is APIWebSocketRoute:
            continue
        if not isinstance(route, APIRoute) or route.stream_item_type is not None:
            return False
    return True


class LeanRoute(APIRoute):
    """An ``APIRoute`` answered by a short handler when FastAPI's general one would only extract
    parameters and return the endpoint's ``Response`` (:func:`lean_eligible`): path, query, header
    and cookie parameters validated by FastAPI's own ``request_params_to_args`` (same values, same
    422 errors), the ``Request`` passed if asked for, the endpoint awaited, its response returned.
    FastAPI's handler also reads the body, solves dependencies, builds a sub-response for headers
    and status, handles streaming and serialises return values - none of which such an endpoint
    uses - and costs ~18 us per request more (marketplace-svc's cached listing read: ~60 -> ~43 us
    CPU in-process). Any other endpoint keeps FastAPI's handler.

    Only for apps without FastAPI's native telemetry (the lean handler records none), and only for
    endpoints that opted in with :func:`lean`: a route of this class that cannot be answered leanly
    raises instead of falling back to FastAPI's handler.
    """

    lean = False

    def get_route_handler(self) -> Handler:
        """The lean handler; ``RuntimeError`` when this route cannot have one."""
        context_var = getattr(fastapi_routing, "_effective_route_context_var", None)
        if context_var is None or context_var.get() is not None:
            # An included router's context may add dependencies this handler would not solve.
            raise RuntimeError(f"lean route {self.path} is inside an included router\n{_LEAN_HINT}")
        reason = lean_ineligibility(self)
        if reason is not None:
            raise RuntimeError(f"lean route {self.path}: {reason}\n{_LEAN_HINT}")
        self.lean = True
        return _lean_handler(self)


_LEAN_HINT = (
    "hint: drop @lean from the endpoint, or make it lean-eligible (see servicekit.routing.lean_eligible)"
)


def lean_eligible(route: APIRoute) -> bool:
    """True when *route*'s endpoint is an ``async def`` annotated to return a ``Response`` that
    takes only path/query/header/cookie parameters and the ``Request``: no dependencies (the
    route's or router's ``dependencies=`` included), no body, no other special parameter."""
    return lean_ineligibility(route) is None


def lean_ineligibility(route: APIRoute) -> str | None:
    """Why *route* cannot have the lean handler (None when it can); see :func:`lean_eligible`."""
    dependant = route.dependant
    call = dependant.call
    special = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if dependant.dependencies:
        return "it has dependencies (the lean handler solves none)"
    if dependant.body_params or route.body_field is not None:
        return "it reads a request body"
    if any(special):
        return "it takes a WebSocket, HTTPConnection, Response, BackgroundTasks or SecurityScopes"
    if call is None or not inspect.iscoroutinefunction(call) or dependant.concurrency is not None:
        return "it is not an async def"
    try:
        returns = get_typed_return_annotation(call)
    except Exception:  # an annotation that does not resolve
        return "its return annotation does not resolve"
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        return "it is not annotated to return a Response"
    return None


#: Where each kind of parameter comes from, in the order FastAPI reads them (path, query, header, cookie).
_SOURCES: tuple[tuple[str, Callable[[Request], Any]], ...] = (
    ("path_params", lambda request: request.path_params),
    ("query_params", lambda request: request.query_params),
    ("header_params", lambda request: request.headers),
    ("cookie_params", lambda request: request.cookies),
)


def _lean_handler(route: APIRoute) -> Handler:
    dependant = route.dependant
    call = dependant.call
    assert call is not None
    # Only the sources some parameter reads (FastAPI parses the query string and cookies anyway).
    sources = [(fields, read) for kind, read in _SOURCES if (fields := getattr(dependant, kind))]
    request_name = dependant.request_param_name

    async def lean_handler(request: Request) -> Response:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for fields, read in sources:
            found, failed = request_params_to_args(fields, read(request))
            values.update(found)
            errors += failed
        if errors:
            raise RequestValidationError(errors, body=None)
        if request_name:
            values[request_name] = request
        response = await call(**values)
        if not isinstance(response, Response):  # annotated wrongly: answer as FastAPI would
            response = _as_fastapi_would(route, response)
        return response

    return lean_handler


def _as_fastapi_would(route: APIRoute, content: Any) -> Response:
    """What FastAPI answers for a returned value that is not a Response (no response model)."""
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    extra = {} if route.status_code is None else {"status_code": route.status_code}
    response: Response = response_class(jsonable_encoder(content), **extra)
    if not is_body_allowed_for_status_code(response.status_code):
        response.body = b""
    return response


def _check_lean(router: APIRouter, *, allowed: bool) -> None:
    """Refuse lean endpoints that could not be answered leanly (see :func:`lean`)."""
    for route in router.routes:
        if not wants_lean(route):
            continue
        path = getattr(route, "path", "?")
        if not allowed:
            raise RuntimeError(
                f"lean route {path}: FastAPI's native telemetry is on and the lean handler records none\n"
                f"{_LEAN_HINT}"
            )
        if not flattenable(router):
            raise RuntimeError(
                f"lean route {path} is on a router that is included, not flattened\n{_LEAN_HINT}"
            )
        if type(route) is not APIRoute:
            raise RuntimeError(f"lean route {path} already has its own route class\n{_LEAN_HINT}")
        reason = lean_ineligibility(route)
        if reason is not None:
            raise RuntimeError(f"lean route {path}: {reason}\n{_LEAN_HINT}")


def add_router(app: FastAPI, router: APIRouter, *, lean: bool = True) -> None:
    """Add *router*'s routes to *app* as app routes when :func:`flattenable`, else include it.
    Endpoints decorated with :func:`lean` become :class:`LeanRoute` routes; *lean* False (telemetry
    on) refuses them. ``RuntimeError`` for a lean endpoint that cannot be one."""
    _check_lean(router, allowed=lean)
    if not flattenable(router):
        app.include_router(router)
        return
    for route in router.routes:
        if isinstance(route, APIWebSocketRoute):
            app.router.add_api_websocket_route(
                route.path, route.endpoint, name=route.name, dependencies=route.dependencies
            )
            continue
        assert isinstance(route, APIRoute)
        copied = {name: getattr(route, name) for name in COPIED_ROUTE_ARGUMENTS}
        app.router.add_api_route(
            route.path,
            route.endpoint,
            tags=list(route.tags),
            route_class_override=LeanRoute if wants_lean(route) else type(route),
            **copied,
        )


def add_routes_in_order(
    app: FastAPI,
    routers: Iterable[APIRouter],
    add_platform_routes: Callable[[FastAPI], None],
    *,
    lean: bool = True,
) -> None:
    """The service's routes first, then the platform's (*add_platform_routes*: probes, ``/metrics``),
    then the docs routes FastAPI added when the app was created. Every route matched before the one
    a request is for costs a match attempt (~0.6 us each), and the service's requests are the ones
    that matter; probes and scrapes come every few seconds.

    Raises ``RuntimeError`` when a service route would answer a platform route's path (a probe must
    never be shadowed), or for a :func:`lean` endpoint that cannot be one. *lean*: see
    :func:`add_router`.
    """
    framework = list(app.router.routes)
    del app.router.routes[:]
    for router in routers:
        add_router(app, router, lean=lean)
    first_platform = len(app.router.routes)
    add_platform_routes(app)
    app.router.routes.extend(framework)
    check_not_shadowed(app.router.routes, app.router.routes[first_platform:])


def check_not_shadowed(routes: Sequence[BaseRoute], platform: Sequence[BaseRoute]) -> None:
    """Each route of *platform* is the first full match of a request for its own path in *routes*."""
    for route in platform:
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or {"GET"}
        if path is None:
            continue
        method = "GET" if "GET" in methods else sorted(methods)[0]
        first = next((r for r in routes if _full_match(r, path, method)), None)
        if first is not route:
            shadow = getattr(first, "path", None) or type(first).__name__  # an included router: no path
            raise RuntimeError(
                f"the route {shadow} answers {method} {path}, a platform route\n"
                f"hint: serve the service's routes under its prefix (e.g. /api/<service>/...)"
            )


def _full_match(route: BaseRoute, path: str, method: str) -> bool:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    match, _ = route.matches(scope)
    return match is Match.FULL


@functools.lru_cache(maxsize=256)
def _path_regex(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


def allowed_methods(routes: Sequence[BaseRoute], path: str) -> list[str]:
    """The methods *routes* serve at *path*, sorted: the ``Allow`` of a 405 for it.

    Starlette answers a 405 with the methods of the first route whose path matched, in set order;
    a path served by several routes (``GET``, ``PATCH`` and ``DELETE`` of one resource) needs them all.
    """
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        route_path = route.path
        if route_path and route.methods and _path_regex(route_path).match(path):
            methods.update(route.methods)
    return sorted(methods)
