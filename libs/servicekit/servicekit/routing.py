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

from collections.abc import Callable, Iterable, Sequence

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Match

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


def add_router(app: FastAPI, router: APIRouter) -> None:
    """Add *router*'s routes to *app* as app routes when :func:`flattenable`, else include it."""
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
            route_class_override=type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
        )


def add_routes_in_order(
    app: FastAPI, routers: Iterable[APIRouter], add_platform_routes: Callable[[FastAPI], None]
) -> None:
    """The service's routes first, then the platform's (*add_platform_routes*: probes, ``/metrics``),
    then the docs routes FastAPI added when the app was created. Every route matched before the one
    a request is for costs a match attempt (~0.6 us each), and the service's requests are the ones
    that matter; probes and scrapes come every few seconds.

    Raises ``RuntimeError`` when a service route would answer a platform route's path (a probe must
    never be shadowed).
    """
    framework = list(app.router.routes)
    del app.router.routes[:]
    for router in routers:
        add_router(app, router)
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
            shadow = getattr(first, "path", first)
            raise RuntimeError(
                f"the route {shadow} answers {method} {path}, a platform route\n"
                f"hint: serve the service's routes under its prefix (e.g. /api/<service>/...)"
            )


def _full_match(route: BaseRoute, path: str, method: str) -> bool:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    match, _ = route.matches(scope)
    return match is Match.FULL
