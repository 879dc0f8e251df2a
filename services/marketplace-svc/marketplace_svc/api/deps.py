"""FastAPI dependencies of marketplace-svc as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from servicekit.auth import CurrentUser
from servicekit.db import SessionDep
from servicekit.deps import CacheDep, RuntimeDep

from marketplace_svc.core.config import Settings

__all__ = ["CacheDep", "CurrentUser", "RuntimeDep", "SessionDep", "SettingsDep"]


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
