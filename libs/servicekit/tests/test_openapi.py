"""The OpenAPI document lists what each operation really answers, in the one error shape."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel
from servicekit.app import create_app
from servicekit.auth import CurrentUser, OptionalUser, require_role
from servicekit.db import SessionDep
from servicekit.deps import CacheDep
from servicekit.openapi import BEARER_SCHEME, ERROR_SCHEMA
from servicekit.testing import app_client, bearer

from .conftest import make_settings

ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}


class Thing(BaseModel):
    name: str


def build_app() -> FastAPI:
    router = APIRouter(prefix="/api/demo/things")

    @router.get("/{thing_id}", responses={404: {"description": "no such thing"}})
    async def read_thing(thing_id: int, session: SessionDep) -> Thing:
        return Thing(name=str(thing_id))

    @router.patch("/{thing_id}")
    async def update_thing(thing_id: int, body: Thing, user: CurrentUser) -> Thing:
        return body

    admin = [require_role("admin")]

    @router.delete("/{thing_id}", status_code=204, response_class=Response, dependencies=admin)
    async def delete_thing(thing_id: int) -> Response:
        return Response(status_code=204)

    @router.get("")
    async def list_things(user: OptionalUser, cache: CacheDep) -> list[Thing]:
        return []

    @router.post("", status_code=201)
    async def create_thing(body: Thing) -> Thing:
        return body

    return create_app(make_settings(), routers=[router])


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_app().openapi()


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return document["paths"][f"/api/demo/things{path}"][method]


def test_the_error_body_is_a_named_component_used_by_every_error_answer(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas[ERROR_SCHEMA]["required"] == ["error"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    for path in document["paths"].values():
        for op in path.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == ERROR_REF, status


def test_route_declared_statuses_keep_their_description(document: dict[str, Any]) -> None:
    assert operation(document, "get", "/{thing_id}")["responses"]["404"]["description"] == "no such thing"


def test_operations_reading_the_caller_declare_401_and_the_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"][BEARER_SCHEME]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": scheme["description"],
    }
    patch = operation(document, "patch", "/{thing_id}")
    assert patch["security"] == [{BEARER_SCHEME: []}]
    assert patch["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    anonymous_too = operation(document, "get", "")
    assert anonymous_too["security"] == [{}, {BEARER_SCHEME: []}]
    assert "401" in anonymous_too["responses"]
    public = operation(document, "post", "")
    assert "security" not in public
    assert "401" not in public["responses"]


def test_role_checks_declare_403(document: dict[str, Any]) -> None:
    assert "403" in operation(document, "delete", "/{thing_id}")["responses"]
    assert "403" not in operation(document, "patch", "/{thing_id}")["responses"]


def test_operations_touching_a_backend_declare_503_with_retry_after(document: dict[str, Any]) -> None:
    read = operation(document, "get", "/{thing_id}")["responses"]
    assert read["503"]["headers"]["Retry-After"]["required"] is False
    assert "503" in operation(document, "get", "")["responses"]  # the cache (Redis)
    assert "503" not in operation(document, "post", "")["responses"]


def test_operations_with_a_body_declare_400(document: dict[str, Any]) -> None:
    assert "400" in operation(document, "post", "")["responses"]
    assert "400" in operation(document, "patch", "/{thing_id}")["responses"]
    assert "400" not in operation(document, "get", "/{thing_id}")["responses"]


async def test_an_undecodable_body_is_400_as_documented() -> None:
    async with app_client(build_app()) as client:
        answer = await client.post(
            "/api/demo/things", content=b"\x1c\x18\xffI", headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"


def test_operation_ids_are_the_endpoint_names(document: dict[str, Any]) -> None:
    ids = sorted(op["operationId"] for path in document["paths"].values() for op in path.values())
    assert ids == ["create_thing", "delete_thing", "list_things", "read_thing", "update_thing"]


def test_two_endpoints_with_one_name_are_refused() -> None:
    first, second = APIRouter(prefix="/api/a"), APIRouter(prefix="/api/b")

    async def same() -> None:
        return None

    first.add_api_route("", same, methods=["GET"])
    second.add_api_route("", same, methods=["GET"])
    app = create_app(make_settings(), routers=[first, second])
    with pytest.raises(RuntimeError, match="operationId 'same' of GET /api/b"):
        app.openapi()


def test_the_document_is_the_same_every_time() -> None:
    app = build_app()
    first = copy.deepcopy(app.openapi())
    assert app.openapi() == first  # completing it again changes nothing
    assert build_app().openapi() == first


async def test_error_answers_match_the_documented_schema(document: dict[str, Any]) -> None:
    app = build_app()
    user = bearer(app.state.settings, "u1")
    async with app_client(app) as client:
        answers = [
            await client.patch("/api/demo/things/1", json={"name": "x"}),  # 401
            await client.patch("/api/demo/things/1", json={"name": "x"}, headers={"Authorization": "Bearer"}),
            await client.delete("/api/demo/things/1", headers=user),  # 403
            await client.post("/api/demo/things", json={"nope": 1}),  # 422
        ]
    schema = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}", "components": document["components"]}
    assert [a.status_code for a in answers] == [401, 401, 403, 422]
    for answer in answers:
        jsonschema.validate(answer.json(), schema)


async def test_405_allows_every_documented_method_of_the_path(document: dict[str, Any]) -> None:
    async with app_client(build_app()) as client:
        item = await client.post("/api/demo/things/1", json={})
        collection = await client.put("/api/demo/things", json={})
    documented = sorted(m.upper() for m in document["paths"]["/api/demo/things/{thing_id}"])
    assert item.status_code == 405
    assert item.headers["allow"] == ", ".join(documented) == "DELETE, GET, PATCH"
    assert collection.headers["allow"] == "GET, POST"
    assert item.json()["error"]["code"] == "method_not_allowed"
