"""Events auth-svc publishes (registered in servicekit's event registry at import)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from servicekit.messaging.envelope import register_event


@register_event("user.registered")
class UserRegistered(BaseModel):
    """A new account was created."""

    user_id: uuid.UUID
    email: str
    registered_at: datetime


@register_event("session.revoked")
class SessionRevoked(BaseModel):
    """Sessions ended (logout, a replayed refresh token, a deleted account): every service refuses
    their access tokens until ``valid_until``, when the last of them expires anyway.

    Delivered to every replica of every service through the ``sessions.revoked`` stream
    (servicekit.revocation), not to a per-service queue."""

    user_id: str
    session_ids: list[str]
    reason: Literal["logout", "refresh_token_reused", "account_deleted"]
    revoked_at: datetime
    valid_until: datetime
