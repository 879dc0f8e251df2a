"""Backend users and vhosts for tests, limited like production.

Redis: an ACL user confined to the service's key prefix. RabbitMQ: a private vhost holding the
platform's real topology and users (rendered by the repo's ``infra``, imported lazily inside the
test-only functions that need it), or a vhost holding servicekit's own topology. Servers are the
repo's test servers (duck typing: ``host``, ``port``, ``user``, ``password``, ``management_port``,
``url()``, ``client()``, ``import_definitions()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

import aio_pika
import httpx

from servicekit.messaging.topology import declare_topology

#: Collections of a definitions document whose items name their vhost.
VHOST_SCOPED = ("permissions", "topic_permissions", "exchanges", "queues", "bindings")
EVERYTHING = {"configure": ".*", "write": ".*", "read": ".*"}


class Credentials(NamedTuple):
    """A user name and its password."""

    user: str
    password: str


# ---- Redis -----------------------------------------------------------------------------------


def add_redis_user(server: Any, service: str) -> Credentials:
    """A Redis ACL user limited like production (keys and channels ``<service>:*``)."""
    creds = Credentials(f"{service}-{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    client = server.client()
    try:
        client.acl_setuser(
            creds.user,
            enabled=True,
            passwords=[f"+{creds.password}"],
            keys=[f"{service}:*"],
            channels=[f"{service}:*"],
            commands=["+@all", "-@dangerous", "-@admin"],
        )
    finally:
        client.close()
    return creds


def delete_redis_user(server: Any, user: str) -> None:
    """Remove an ACL user made by :func:`add_redis_user` (no-op if the server is gone)."""
    with contextlib.suppress(Exception):
        client = server.client()
        try:
            client.acl_deluser(user)
        finally:
            client.close()


# ---- RabbitMQ --------------------------------------------------------------------------------


def isolated_definitions(
    definitions: Mapping[str, Any],
    passwords: Mapping[str, str],
    *,
    vhost: str,
    suffix: str = "",
    keep: Collection[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Credentials]]:
    """*definitions* (rendered with *passwords*: service -> password) moved to *vhost*, with only the
    users of *keep* (default: every service in *passwords*) and their permissions, each renamed
    ``<service><suffix>`` (user names are node-wide). Returns the new document (the input is left
    as it was) and each kept service's credentials."""
    kept = sorted(passwords if keep is None else keep)
    if unknown := [svc for svc in kept if svc not in passwords]:
        raise ValueError(f"no password for {', '.join(unknown)}")
    names = {svc: f"{svc}{suffix}" for svc in kept}
    defs = copy.deepcopy(dict(definitions))
    defs["users"] = [{**u, "name": names[u["name"]]} for u in defs["users"] if u["name"] in names]
    for key in ("permissions", "topic_permissions"):
        defs[key] = [{**p, "user": names[p["user"]]} for p in defs[key] if p["user"] in names]
    defs["vhosts"] = [{"name": vhost}]
    for key in VHOST_SCOPED:
        for item in defs[key]:
            item["vhost"] = vhost
    return defs, {svc: Credentials(names[svc], passwords[svc]) for svc in kept}


def platform_definitions(
    spec: Any, *, vhost: str, suffix: str = "", keep: Collection[str] | None = None
) -> tuple[dict[str, Any], dict[str, Credentials]]:
    """:func:`isolated_definitions` of the platform's real definitions for *spec* (an
    ``infra.spec.PlatformSpec``), rendered with fresh passwords.

    Test-only: imports the monorepo's ``infra`` package lazily, here, so it works only in a checkout
    (servicekit itself never imports ``infra``).
    """
    from infra.render.rabbitmq import render_definitions

    passwords = {s.name: secrets.token_urlsafe(12) for s in spec.services if s.manifest.needs.rabbitmq}
    definitions = render_definitions(spec, passwords)
    return isolated_definitions(definitions, passwords, vhost=vhost, suffix=suffix, keep=keep)


@dataclass(frozen=True)
class IsolatedVhost:
    """A private vhost on a test broker and the renamed users of the services kept in it."""

    vhost: str
    users: dict[str, Credentials]


async def import_platform_vhost(
    server: Any, spec: Any, *, keep: Collection[str] | None = None, prefix: str = "test"
) -> IsolatedVhost:
    """Import :func:`platform_definitions` of *spec* into the running *server* under a fresh vhost
    ``<prefix>-<tag>``, users renamed ``<service>-<tag>``: the kept services (default: all) then
    run with exactly their production permissions. The server's admin gets full rights on the vhost
    (``import_definitions`` adds them). Test-only, like :func:`platform_definitions`."""
    tag = secrets.token_hex(3)
    vhost = f"{prefix}-{tag}"
    defs, users = platform_definitions(spec, vhost=vhost, suffix=f"-{tag}", keep=keep)
    await asyncio.to_thread(server.import_definitions, defs)
    return IsolatedVhost(vhost, users)


def _management(server: Any) -> httpx.AsyncClient:
    """An admin client of *server*'s management API."""
    base = f"http://{server.host}:{server.management_port}/api"
    return httpx.AsyncClient(base_url=base, auth=(server.user, server.password), timeout=10)


async def delete_vhost(server: Any, vhost: str, users: Sequence[str] = ()) -> None:
    """Delete *vhost* and the node-wide *users* (management API; missing ones are ignored)."""
    async with _management(server) as http:
        await http.delete(f"/vhosts/{quote(vhost, safe='')}")
        for user in users:
            await http.delete(f"/users/{quote(user, safe='')}")


async def create_topology_vhost(
    server: Any,
    vhost: str,
    consumers: Mapping[str, Sequence[str]],
    retry_delays_ms: Sequence[int],
) -> None:
    """A fresh *vhost* (replacing one of that name) where the admin may do everything, holding
    servicekit's topology (:func:`~servicekit.messaging.topology.declare_topology`) for *consumers*."""
    async with _management(server) as http:
        await http.delete(f"/vhosts/{quote(vhost, safe='')}")
        (await http.put(f"/vhosts/{quote(vhost, safe='')}")).raise_for_status()
        grant = f"/permissions/{quote(vhost, safe='')}/{quote(server.user, safe='')}"
        (await http.put(grant, json=EVERYTHING)).raise_for_status()
    connection = await aio_pika.connect(server.url(vhost))
    async with connection:
        await declare_topology(await connection.channel(), consumers, retry_delays_ms)
