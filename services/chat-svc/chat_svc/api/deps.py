"""Dependencies of chat-svc's routes, as Annotated aliases."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from servicekit.auth import CurrentUser
from servicekit.db import SessionDep
from servicekit.errors import Unauthorized
from starlette.requests import HTTPConnection

from chat_svc.core.config import Settings
from chat_svc.hub import Hub

__all__ = ["HubDep", "SessionDep", "SettingsDep", "UserId"]


def parse_user_id(subject: str) -> uuid.UUID:
    """A token subject as a user id; 401 if it is not a UUID."""
    try:
        return uuid.UUID(subject)
    except ValueError as exc:
        raise Unauthorized("token subject is not a user id", code="invalid_token") from exc


async def get_user_id(user: CurrentUser) -> uuid.UUID:
    """The caller's user id (the access token's ``sub``)."""
    return parse_user_id(user.user_id)


async def get_hub(conn: HTTPConnection) -> Hub:
    """This replica's live-delivery hub (HTTP requests and WebSockets alike)."""
    return conn.app.state.hub


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


UserId = Annotated[uuid.UUID, Depends(get_user_id)]
HubDep = Annotated[Hub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
