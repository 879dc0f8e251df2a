"""Dependencies of payment-svc's routes, as Annotated aliases."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from servicekit.auth import CurrentUser
from servicekit.db import SessionDep
from servicekit.errors import Unauthorized

from payment_svc.core.config import Settings
from payment_svc.processor import PaymentProcessor

__all__ = ["ProcessorDep", "SessionDep", "SettingsDep", "UserId"]


async def get_user_id(user: CurrentUser) -> uuid.UUID:
    """The caller's user id (the access token's ``sub``, a UUID)."""
    try:
        return uuid.UUID(user.user_id)
    except ValueError as exc:
        raise Unauthorized("token subject is not a user id", code="invalid_token") from exc


async def get_processor(request: Request) -> PaymentProcessor:
    """The payment-processor adapter chosen by ``PAYMENT_PROCESSOR``."""
    return request.app.state.processor


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


UserId = Annotated[uuid.UUID, Depends(get_user_id)]
ProcessorDep = Annotated[PaymentProcessor, Depends(get_processor)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
