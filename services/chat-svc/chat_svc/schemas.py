"""Request/response bodies, cursors and event payloads of chat-svc."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chat_svc.models import MAX_BODY

Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BODY)]


class ConversationCreate(BaseModel):
    """Open (or get back) the caller's conversation with a listing's seller."""

    model_config = ConfigDict(extra="forbid")

    listing_id: uuid.UUID


class ConversationOut(BaseModel):
    """A conversation as its participants see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    listing_id: uuid.UUID
    buyer_id: uuid.UUID
    seller_id: uuid.UUID
    created_at: datetime
    last_message_at: datetime


class MessageCreate(BaseModel):
    """Post a message to a conversation."""

    model_config = ConfigDict(extra="forbid")

    body: Body


class MessageOut(BaseModel):
    """A message; the same shape is pushed over the WebSocket (``{"type": "message", ...}``)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    body: str
    created_at: datetime


class MessagePage(BaseModel):
    """Messages newest first; pass ``next_cursor`` back as ``cursor`` for older ones."""

    items: list[MessageOut]
    next_cursor: str | None


class ConversationPage(BaseModel):
    """The caller's conversations, most recently active first."""

    items: list[ConversationOut]


class ListingCreated(BaseModel):
    """The part of a listing.created payload chat-svc reads (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    owner_id: uuid.UUID


def encode_cursor(message_id: int) -> str:
    """An opaque cursor pointing just below ``message_id``."""
    return base64.urlsafe_b64encode(f"m{message_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The message id inside a cursor; ValueError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not raw.startswith("m") or not raw[1:].isdigit():
        raise ValueError("malformed cursor")
    return int(raw[1:])


CursorParam = Annotated[str | None, Field(max_length=64)]
LimitParam = Annotated[int, Field(ge=1, le=100)]
