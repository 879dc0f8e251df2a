"""Conversations and messages: only a conversation's two participants may read or post."""

from __future__ import annotations

import uuid

from servicekit.errors import BadRequest, Forbidden, NotFound
from servicekit.messaging.envelope import new_event
from servicekit.messaging.outbox import publish_in_transaction
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chat_svc.events import MessageSent
from chat_svc.models import Conversation, Listing, Message
from chat_svc.schemas import decode_cursor, encode_cursor


async def open_conversation(
    session: AsyncSession, listing_id: uuid.UUID, buyer_id: uuid.UUID
) -> tuple[Conversation, bool]:
    """The caller's conversation with the listing's seller, created if new; (conversation, created)."""
    async with session.begin():
        listing = await session.get(Listing, listing_id)
        if listing is None:
            raise NotFound("listing not found", code="listing_not_found")
        if listing.seller_id == buyer_id:
            raise BadRequest("you cannot open a conversation about your own listing", code="own_listing")
        new_id = await session.scalar(
            insert(Conversation)
            .values(id=uuid.uuid4(), listing_id=listing_id, buyer_id=buyer_id, seller_id=listing.seller_id)
            .on_conflict_do_nothing(index_elements=[Conversation.listing_id, Conversation.buyer_id])
            .returning(Conversation.id)
        )
        conversation = await session.scalar(
            select(Conversation).where(
                Conversation.listing_id == listing_id, Conversation.buyer_id == buyer_id
            )
        )
    assert conversation is not None
    return conversation, new_id is not None


async def list_conversations(session: AsyncSession, user_id: uuid.UUID, limit: int) -> list[Conversation]:
    """The user's conversations, most recently active first."""
    rows = await session.scalars(
        select(Conversation)
        .where(or_(Conversation.buyer_id == user_id, Conversation.seller_id == user_id))
        .order_by(Conversation.last_message_at.desc(), Conversation.id)
        .limit(limit)
    )
    return list(rows)


async def get_conversation(
    session: AsyncSession, conversation_id: uuid.UUID, user_id: uuid.UUID
) -> Conversation:
    """A conversation the user takes part in: 404 if it does not exist, 403 if not a participant."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    if user_id not in conversation.participants():
        raise Forbidden("you are not a participant of this conversation", code="not_participant")
    return conversation


async def post_message(
    session: AsyncSession, conversation_id: uuid.UUID, sender_id: uuid.UUID, body: str, producer: str
) -> tuple[Message, Conversation]:
    """Store a message, bump the conversation and queue message.sent, in one transaction."""
    async with session.begin():
        conversation = await get_conversation(session, conversation_id, sender_id)
        message = Message(conversation_id=conversation.id, sender_id=sender_id, body=body)
        session.add(message)
        await session.flush()
        await session.refresh(message)
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(last_message_at=message.created_at)
        )
        recipient = conversation.seller_id if sender_id == conversation.buyer_id else conversation.buyer_id
        event = MessageSent(
            message_id=message.id,
            conversation_id=conversation.id,
            listing_id=conversation.listing_id,
            sender_id=sender_id,
            recipient_id=recipient,
            sent_at=message.created_at,
        )
        await publish_in_transaction(session, new_event(event, producer=producer))
    return message, conversation


async def list_messages(
    session: AsyncSession, conversation: Conversation, cursor: str | None, limit: int
) -> tuple[list[Message], str | None]:
    """One page of messages, newest first, and the cursor of the next (older) page, if any."""
    query = select(Message).where(Message.conversation_id == conversation.id)
    if cursor is not None:
        try:
            before = decode_cursor(cursor)
        except ValueError as exc:
            raise BadRequest("malformed cursor", code="invalid_cursor") from exc
        query = query.where(Message.id < before)
    rows = list(await session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    return items, (encode_cursor(items[-1].id) if more else None)
