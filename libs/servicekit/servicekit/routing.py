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
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi import routing as fastapi_routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import get_typed_return_annotation, request_params_to_args
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

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

    Only for apps without FastAPI's native telemetry (the lean handler records none).
    """

    lean = False

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, or the lean one for an eligible endpoint declared on this route."""
        handler = super().get_route_handler()
        context_var = getattr(fastapi_routing, "_effective_route_context_var", None)
        in_included_router = context_var is None or context_var.get() is not None
        if in_included_router or not lean_eligible(self):
            return handler  # an included router's context may add dependencies to this route
        self.lean = True
        return _lean_handler(self)


def lean_eligible(route: APIRoute) -> bool:
    """True when *route*'s endpoint is an ``async def`` annotated to return a ``Response`` that
    takes only path/query/header/cookie parameters and the ``Request``: no dependencies (the
    route's or router's ``dependencies=`` included), no body, no other special parameter."""
    dependant = route.dependant
    call = dependant.call
    special = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if dependant.dependencies or dependant.body_params or route.body_field is not None or any(special):
        return False
    if call is None or not inspect.iscoroutinefunction(call) or dependant.concurrency is not None:
        return False
    try:
        returns = get_typed_return_annotation(call)
    except Exception:  # an annotation that does not resolve: leave it to FastAPI
        return False
    return inspect.isclass(returns) and issubclass(returns, Response)


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


def add_router(app: FastAPI, router: APIRouter, *, lean: bool = False) -> None:
    """Add *router*'s routes to *app* as app routes when :func:`flattenable`, else include it.
    With *lean*, plain ``APIRoute`` routes become :class:`LeanRoute` routes."""
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
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            route_class_override=LeanRoute if lean and type(route) is APIRoute else type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
        )


def add_routes_in_order(
    app: FastAPI,
    routers: Iterable[APIRouter],
    add_platform_routes: Callable[[FastAPI], None],
    *,
    lean: bool = False,
) -> None:
    """The service's routes first, then the platform's (*add_platform_routes*: probes, ``/metrics``),
    then the docs routes FastAPI added when the app was created. Every route matched before the one
    a request is for costs a match attempt (~0.6 us each), and the service's requests are the ones
    that matter; probes and scrapes come every few seconds.

    Raises ``RuntimeError`` when a service route would answer a platform route's path (a probe must
    never be shadowed). *lean*: see :func:`add_router`.
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
