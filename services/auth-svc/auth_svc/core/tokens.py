"""Issuing the access/refresh pair of a session, and announcing revoked sessions to every service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from servicekit.auth import LEEWAY, issue_access_token, issue_refresh_token
from servicekit.messaging.envelope import new_event
from servicekit.messaging.outbox import publish_in_transaction
from servicekit.runtime import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from auth_svc.core.config import Settings
from auth_svc.events import SessionRevoked
from auth_svc.schemas import TokenPair


def new_token_id() -> str:
    """A refresh token's ``jti`` (the session remembers the one that may rotate it next)."""
    return uuid.uuid4().hex


def token_pair(settings: Settings, user_id: str, session_id: str, refresh_token_id: str) -> TokenPair:
    """An access token and a refresh token (``jti`` *refresh_token_id*), both of *session_id*."""
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    return TokenPair(
        access_token=issue_access_token(settings, user_id, session_id=session_id, ttl=access_ttl),
        refresh_token=issue_refresh_token(
            settings,
            user_id,
            session_id,
            ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            token_id=refresh_token_id,
        ),
        expires_in=settings.access_token_ttl_seconds,
    )


async def announce_revoked(
    db: AsyncSession,
    runtime: Runtime,
    settings: Settings,
    user_id: str,
    session_ids: list[str],
    reason: str,
) -> None:
    """Publish ``session.revoked`` through the outbox (committed here): every service refuses these
    sessions' access tokens until the last one could have expired."""
    if not session_ids:
        return
    now = datetime.now(UTC)
    payload = SessionRevoked(
        user_id=user_id,
        session_ids=session_ids,
        reason=reason,  # type: ignore[arg-type]
        revoked_at=now,
        valid_until=now + timedelta(seconds=settings.access_token_ttl_seconds) + LEEWAY,
    )
    await publish_in_transaction(db, new_event(payload, producer=settings.service_name))
    await db.commit()
    runtime.revocations.add(session_ids, payload.valid_until.timestamp())  # this replica at once
    if runtime.relay is not None:
        runtime.relay.notify()
