"""Tokens: ``POST /login``, ``POST /refresh`` (rotation) and ``POST /logout`` (revocation).

Every token carries its session id. Ending a session (logout, a replayed refresh token, a deleted
account) is announced as ``session.revoked``, so every service refuses its access tokens at once.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

from fastapi import APIRouter, Depends, Response
from servicekit.auth import decode_token
from servicekit.errors import RateLimited, Unauthorized, Unavailable
from servicekit.sessions import RefreshTokenReused
from sqlalchemy import select

from auth_svc.api.deps import (
    ClientIpDep,
    LimiterDep,
    PasswordsDep,
    RuntimeDep,
    SessionDep,
    SessionStoreDep,
    SettingsDep,
)
from auth_svc.core.security import redis_required
from auth_svc.core.tokens import announce_revoked, new_token_id, token_pair
from auth_svc.models import User
from auth_svc.schemas import LoginRequest, RefreshRequest, TokenPair


async def no_store(response: Response) -> None:
    """Token answers must never be kept by a browser or shared cache (RFC 6749 section 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


router = APIRouter(tags=["tokens"], dependencies=[Depends(no_store)])
#: A refresh token that does not verify, was rotated already (every session of its user is then
#: revoked) or whose session ended.
BAD_REFRESH = {
    401: {"description": "invalid or expired refresh token, ended session, or a reused one (ending them all)"}
}


@router.post(
    "/login",
    response_model=TokenPair,
    responses={
        401: {"description": "wrong email or password (invalid_credentials)"},
        429: {"description": "too many failed logins for this account or address"},
    },
)
async def login(
    body: LoginRequest,
    session: SessionDep,
    store: SessionStoreDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    client_ip: ClientIpDep,
    passwords: PasswordsDep,
) -> TokenPair:
    """Exchange credentials for tokens; 401 on bad credentials, 429 once a failed-login limit is hit.

    The attempt is counted before the password is checked (see :mod:`auth_svc.core.login_limit`).
    """
    with redis_required("login"):
        blocked = await limiter.reserve(body.email, client_ip)
    if blocked:
        raise RateLimited("too many failed logins; try again later", retry_after=blocked)
    user = await session.scalar(select(User).where(User.email == body.email))
    try:
        matches = await passwords.check(user.password_hash if user else None, body.password)
    except Unavailable:
        with redis_required("login"):
            await limiter.give_back(body.email, client_ip)
        raise
    if not matches or user is None:
        raise Unauthorized("invalid email or password", code="invalid_credentials")
    if passwords.should_rehash(user.password_hash):
        with contextlib.suppress(Unavailable):  # busy: upgrade the hash at a later login
            user.password_hash = await passwords.hash(body.password)
            await session.commit()
    refresh_id = new_token_id()
    with redis_required("login"):
        await limiter.succeeded(body.email, client_ip)
        session_id = await store.create(
            str(user.id),
            token_id=refresh_id,
            ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            max_age=timedelta(seconds=settings.session_max_age_seconds),
        )
    return token_pair(settings, str(user.id), session_id, refresh_id)


@router.post("/refresh", response_model=TokenPair, responses=BAD_REFRESH)  # type: ignore[arg-type]
async def refresh(
    body: RefreshRequest,
    session: SessionDep,
    store: SessionStoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
) -> TokenPair:
    """Rotate: the presented refresh token is consumed and a new pair (same session) issued.

    Presenting an already-rotated token again revokes every session of the user (401), and the
    revocation is announced to every service.
    """
    claims = decode_token(settings, body.refresh_token, "refresh")
    assert claims.session_id  # decode_token requires it
    refresh_id = new_token_id()
    ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    try:
        with redis_required("refresh"):
            info = await store.rotate(claims.session_id, claims.token_id, refresh_id, ttl=ttl)
    except RefreshTokenReused as exc:
        await announce_revoked(session, runtime, settings, exc.user_id, exc.revoked, "refresh_token_reused")
        raise
    if await session.get(User, uuid.UUID(info.user_id)) is None:
        with redis_required("refresh"):
            await store.revoke(info.session_id)
        await announce_revoked(session, runtime, settings, info.user_id, [info.session_id], "account_deleted")
        raise Unauthorized("account no longer exists", code="user_not_found")
    return token_pair(settings, info.user_id, info.session_id, refresh_id)


@router.post("/logout", status_code=204, response_class=Response, responses=BAD_REFRESH)  # type: ignore[arg-type]
async def logout(
    body: RefreshRequest,
    session: SessionDep,
    store: SessionStoreDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
) -> Response:
    """End the session of the refresh token: it can no longer refresh, and every service refuses
    its access tokens from now on."""
    claims = decode_token(settings, body.refresh_token, "refresh")
    assert claims.session_id
    with redis_required("logout"):
        ended = await store.revoke(claims.session_id)
    if ended is not None:
        await announce_revoked(session, runtime, settings, ended.user_id, [ended.session_id], "logout")
    return Response(status_code=204)
