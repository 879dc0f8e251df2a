"""Events auth-svc publishes (registered in servicekit's event registry at import)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from servicekit.messaging.envelope import register_event


@register_event("user.registered")
class UserRegistered(BaseModel):
    """A new account was created."""

    user_id: uuid.UUID
    email: str
    registered_at: datetime
