"""Accounts: ``POST /register`` and ``GET /me``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter
from servicekit.errors import Conflict, NotFound, Unauthorized
from servicekit.messaging.envelope import new_event
from servicekit.messaging.outbox import publish_in_transaction
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from auth_svc.api.deps import CurrentUser, PasswordsDep, RuntimeDep, SessionDep, SettingsDep
from auth_svc.events import UserRegistered
from auth_svc.models import User
from auth_svc.schemas import RegisterRequest, UserOut

router = APIRouter(tags=["users"])


@router.post(
    "/register",
    status_code=201,
    response_model=UserOut,
    responses={409: {"description": "the email is already registered (email_taken)"}},
)
async def register(
    body: RegisterRequest,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
) -> User:
    """Create an account and publish ``user.registered`` (outbox, same transaction); 409 if taken."""
    if await session.scalar(select(User.id).where(User.email == body.email)) is not None:
        raise Conflict("email is already registered", code="email_taken")
    now = datetime.now(UTC)
    user = User(
        id=uuid.uuid4(),
        email=body.email,
        password_hash=await passwords.hash(body.password),
        created_at=now,
    )
    session.add(user)
    payload = UserRegistered(user_id=user.id, email=user.email, registered_at=now)
    try:
        await session.flush()
        await publish_in_transaction(session, new_event(payload, producer=settings.service_name))
        await session.commit()
    except IntegrityError as exc:  # a concurrent registration of the same email won the race
        await session.rollback()
        raise Conflict("email is already registered", code="email_taken") from exc
    if runtime.relay is not None:
        runtime.relay.notify()
    return user


@router.get(
    "/me",
    response_model=UserOut,
    responses={404: {"description": "the account was deleted (user_not_found)"}},
)
async def me(principal: CurrentUser, session: SessionDep) -> User:
    """The caller's account (from a valid access token)."""
    try:
        user_id = uuid.UUID(principal.user_id)
    except ValueError as exc:
        raise Unauthorized("invalid token", code="invalid_token") from exc
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("account no longer exists", code="user_not_found")
    return user
