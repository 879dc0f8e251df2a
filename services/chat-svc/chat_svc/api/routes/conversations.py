"""``/api/chat/conversations``: open conversations, post and page through messages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from chat_svc import conversations
from chat_svc.api.deps import HubDep, SessionDep, SettingsDep, UserId
from chat_svc.schemas import (
    ConversationCreate,
    ConversationOut,
    ConversationPage,
    CursorParam,
    LimitParam,
    MessageCreate,
    MessageOut,
    MessagePage,
)

router = APIRouter(prefix="/api/chat/conversations", tags=["conversations"])
NOT_YOURS = {
    403: {"description": "the caller is not a participant (not_participant)"},
    404: {"description": "no such conversation"},
}
BAD_CURSOR = {400: {"description": "the cursor is not one this API returned (invalid_cursor)"}}
LOCATION = {
    "Location": {"description": "the conversation's URL", "required": True, "schema": {"type": "string"}}
}


@router.post(
    "",
    status_code=201,
    response_model=ConversationOut,
    responses={
        200: {
            "description": "the conversation was already open",
            "model": ConversationOut,
            "headers": LOCATION,
        },
        201: {"description": "the conversation was opened", "headers": LOCATION},
        400: {"description": "the caller is the listing's seller (own_listing)"},
        404: {"description": "unknown listing (listing_not_found)"},
    },
)
async def open_conversation(
    body: ConversationCreate, response: Response, session: SessionDep, user_id: UserId
) -> ConversationOut:
    """Open the caller's conversation with the listing's seller (200 with the existing one if open)."""
    conversation, created = await conversations.open_conversation(session, body.listing_id, user_id)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"{router.prefix}/{conversation.id}"
    return ConversationOut.model_validate(conversation)


@router.get("", response_model=ConversationPage)
async def list_conversations(
    session: SessionDep, user_id: UserId, limit: Annotated[LimitParam, Query()] = 50
) -> ConversationPage:
    """The caller's conversations, most recently active first."""
    items = await conversations.list_conversations(session, user_id, limit)
    return ConversationPage(items=[ConversationOut.model_validate(c) for c in items])


@router.get("/{conversation_id}", response_model=ConversationOut, responses=NOT_YOURS)  # type: ignore[arg-type]
async def read_conversation(
    conversation_id: uuid.UUID, session: SessionDep, user_id: UserId
) -> ConversationOut:
    """One conversation the caller takes part in."""
    return ConversationOut.model_validate(
        await conversations.get_conversation(session, conversation_id, user_id)
    )


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses=NOT_YOURS,  # type: ignore[arg-type]
)
async def post_message(
    conversation_id: uuid.UUID,
    body: MessageCreate,
    request: Request,
    session: SessionDep,
    hub: HubDep,
    settings: SettingsDep,
    user_id: UserId,
) -> MessageOut:
    """Post a message; it is pushed to both participants' open WebSockets on every replica."""
    message, conversation = await conversations.post_message(
        session, conversation_id, user_id, body.body, settings.service_name
    )
    relay = request.app.state.runtime.relay
    if relay is not None:
        relay.notify()
    out = MessageOut.model_validate(message)
    push = '{"type":"message","message":' + out.model_dump_json() + "}"
    await hub.publish(list(conversation.participants()), push)
    return out


@router.get(
    "/{conversation_id}/messages",
    response_model=MessagePage,
    responses=NOT_YOURS | BAD_CURSOR,  # type: ignore[arg-type]
)
async def list_messages(
    conversation_id: uuid.UUID,
    session: SessionDep,
    user_id: UserId,
    cursor: Annotated[CursorParam, Query()] = None,
    limit: Annotated[LimitParam, Query()] = 50,
) -> MessagePage:
    """Messages newest first; pass ``next_cursor`` as ``cursor`` to get older ones."""
    conversation = await conversations.get_conversation(session, conversation_id, user_id)
    items, next_cursor = await conversations.list_messages(session, conversation, cursor, limit)
    return MessagePage(items=[MessageOut.model_validate(m) for m in items], next_cursor=next_cursor)
