"""Issuing the access/refresh pair for a session (servicekit signs; this picks the lifetimes)."""

from __future__ import annotations

from datetime import timedelta

from servicekit.auth import issue_access_token, issue_refresh_token

from auth_svc.core.config import Settings
from auth_svc.schemas import TokenPair


def token_pair(settings: Settings, user_id: str, session_id: str) -> TokenPair:
    """An access token and a refresh token bound to *session_id*."""
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    return TokenPair(
        access_token=issue_access_token(settings, user_id, ttl=access_ttl),
        refresh_token=issue_refresh_token(
            settings, user_id, session_id, ttl=timedelta(seconds=settings.refresh_token_ttl_seconds)
        ),
        expires_in=settings.access_token_ttl_seconds,
    )
