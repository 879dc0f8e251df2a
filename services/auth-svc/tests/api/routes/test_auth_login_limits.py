"""Attacks on the failed-login limiter (issue 11, item 3): parallel guesses, guessing one account from
many addresses, spraying many accounts from one address, and rotating through an IPv6 /64."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from auth_svc.core.config import Settings
from httpx import AsyncClient

Register = Callable[..., Awaitable[dict[str, Any]]]
PASSWORD = "correct-horse-42-battery"
WRONG = "wrong-password-123"


async def _login(client: AsyncClient, email: str, password: str) -> int:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    return response.status_code


def _ip() -> str:
    """A fresh client address, so the test owns its per-address counters."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


async def test_parallel_wrong_guesses_get_no_more_tries_than_the_limit(
    client_from: Callable[[str], AsyncClient], register: Register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    async with client_from(_ip()) as attacker:
        statuses = await asyncio.gather(*(_login(attacker, email, WRONG) for _ in range(12)))
    assert statuses.count(401) <= auth_settings.login_max_failures, statuses
    assert set(statuses) <= {401, 429}


async def test_guessing_one_account_from_many_addresses_is_limited(
    client_from: Callable[[str], AsyncClient], register: Register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    per_pair = auth_settings.login_max_failures
    guesses = 0
    while guesses < auth_settings.login_max_failures_per_account:
        async with client_from(_ip()) as attacker:  # a new address before the pair limit hits
            for _ in range(min(per_pair, auth_settings.login_max_failures_per_account - guesses)):
                assert await _login(attacker, email, WRONG) == 401
                guesses += 1
    async with client_from(_ip()) as fresh:
        assert await _login(fresh, email, PASSWORD) == 429  # the right password, from a new address


async def test_spraying_many_accounts_from_one_address_is_limited(
    client_from: Callable[[str], AsyncClient], register: Register, auth_settings: Settings
) -> None:
    victim = f"victim-{uuid.uuid4().hex[:10]}@example.com"
    await register(victim)
    async with client_from(_ip()) as sprayer:
        for _ in range(auth_settings.login_max_failures_per_ip):
            assert await _login(sprayer, f"user-{uuid.uuid4().hex[:10]}@example.com", WRONG) == 401
        assert await _login(sprayer, victim, PASSWORD) == 429


async def test_ipv6_clients_share_the_limit_of_their_64(
    client_from: Callable[[str], AsyncClient], register: Register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    prefix = f"2001:db8:{uuid.uuid4().int % 0xFFFF:x}:1"
    for n in range(auth_settings.login_max_failures):
        async with client_from(f"{prefix}::{n + 1:x}") as attacker:  # another address of the same /64
            assert await _login(attacker, email, WRONG) == 401
    async with client_from(f"{prefix}::ffff") as attacker:
        assert await _login(attacker, email, PASSWORD) == 429
    async with client_from(f"{prefix[:-1]}2::1") as neighbour:  # the next /64
        assert await _login(neighbour, email, PASSWORD) == 200
