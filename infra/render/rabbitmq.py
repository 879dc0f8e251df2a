"""RabbitMQ definitions (the broker's import format), derived from ``publishes``/``consumes``.

Implements the topology table of ``docs/architecture.md`` exactly: vhost ``market``; topic exchanges
``events``, ``events.retry``, ``events.redeliver``, ``events.dlx``; per consumer ``<svc>.events``,
``<svc>.retry.<n>`` and ``<svc>.dlq``; one user per service with least-privilege permissions and topic
permissions. When a service publishes ``session.revoked``, the stream queue ``sessions.revoked``
(bound to ``events`` with that key, kept 2 h) is declared and every service user may read it: each
replica of each service follows it to refuse revoked sessions' tokens (servicekit.revocation).
Passwords are stored as ``rabbit_password_hashing_sha256`` hashes whose 4-byte salt is derived from
user and password, so the output is byte-stable for the same input and never holds a plaintext
password. The naming helpers here are the ones consumer code should reuse.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.errors import UsageError
from infra.render.redis import memory_bytes
from infra.spec import PlatformSpec

VHOST = "market"
EVENTS = "events"
RETRY = "events.retry"
REDELIVER = "events.redeliver"
DLX = "events.dlx"
EXCHANGES = (EVENTS, RETRY, REDELIVER, DLX)
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
ADMIN_USER = "admin"
NOTHING = "^$"
#: Session revocations: an event every replica of every service reads (servicekit.revocation).
REVOCATION_EVENT = "session.revoked"
REVOCATIONS_STREAM = "sessions.revoked"
REVOCATIONS_STREAM_ARGUMENTS = {
    "x-queue-type": "stream",
    "x-max-age": "2h",
    "x-stream-max-segment-size-bytes": 8_000_000,
}


def events_queue(service: str) -> str:
    """The consumer queue of *service*."""
    return f"{service}.events"


def retry_queue(service: str, attempt: int) -> str:
    """Retry queue (and its routing key on ``events.retry``) used after failed delivery *attempt*."""
    return f"{service}.retry.{attempt}"


def dead_letter_queue(service: str) -> str:
    """Where *service*'s messages end after the last retry (bound to ``events.dlx`` with key *service*)."""
    return f"{service}.dlq"


@dataclass(frozen=True)
class ConsumerQueues:
    """The queues one consuming service owns."""

    service: str
    events: str
    retries: tuple[str, ...]
    dlq: str
    routing_keys: tuple[str, ...]


def queue_names(spec: PlatformSpec) -> dict[str, ConsumerQueues]:
    """Consuming service -> its queues, for every service that consumes something."""
    delays = spec.config.rabbitmq.retry_delays_ms
    return {
        svc: ConsumerQueues(
            service=svc,
            events=events_queue(svc),
            retries=tuple(retry_queue(svc, n) for n in range(1, len(delays) + 1)),
            dlq=dead_letter_queue(svc),
            routing_keys=tuple(keys),
        )
        for svc, keys in sorted(spec.consumers.items())
    }


def password_hash(user: str, password: str) -> str:
    """``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), salt from user+password."""
    salt = hashlib.sha256(f"{user}\0{password}".encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _alternation(names: list[str]) -> str:
    if not names:
        return NOTHING
    return "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")$"


def _durable_queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": arguments}


def _binding(source: str, queue: str, key: str) -> dict[str, Any]:
    return {
        "source": source,
        "vhost": VHOST,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": key,
        "arguments": {},
    }


def _password(passwords: Mapping[str, str], user: str) -> str:
    try:
        return passwords[user]
    except KeyError:
        raise UsageError(
            f"no RabbitMQ password for user '{user}'",
            hint="pass a password for every service with needs.rabbitmq",
        ) from None


def render_definitions(spec: PlatformSpec, passwords: Mapping[str, str]) -> dict[str, Any]:
    """The definitions document; *passwords*: service user (and optionally ``admin``) -> password."""
    delays = spec.config.rabbitmq.retry_delays_ms
    users: list[dict[str, Any]] = []
    permissions: list[dict[str, Any]] = []
    topic_permissions: list[dict[str, Any]] = []
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    revocations = REVOCATION_EVENT in spec.publishers
    if revocations:
        queues.append(_durable_queue(REVOCATIONS_STREAM, dict(REVOCATIONS_STREAM_ARGUMENTS)))
        bindings.append(_binding(EVENTS, REVOCATIONS_STREAM, REVOCATION_EVENT))
    if ADMIN_USER in passwords:
        users.append(_user(ADMIN_USER, passwords[ADMIN_USER], ["administrator"]))
        permissions.append(_permission(ADMIN_USER, ".*", ".*", ".*"))
    for svc in sorted(spec.services, key=lambda s: s.name):
        need = svc.manifest.needs.rabbitmq
        if need is None:
            continue
        name = svc.name
        users.append(_user(name, _password(passwords, name), []))
        writable = ([EVENTS] if need.publishes else []) + ([RETRY, DLX] if need.consumes else [])
        readable = [events_queue(name)] if need.consumes else []
        readable += [REVOCATIONS_STREAM] if revocations else []
        permissions.append(_permission(name, NOTHING, _alternation(writable), _alternation(readable)))
        if need.publishes:
            topic_permissions.append(_topic(name, EVENTS, _alternation(list(need.publishes))))
        if need.consumes:
            topic_permissions.append(_topic(name, RETRY, f"^{re.escape(name)}\\.retry\\.[0-9]+$"))
            topic_permissions.append(_topic(name, DLX, f"^{re.escape(name)}$"))
            queues += _consumer_queues(name, delays)
            bindings += [_binding(EVENTS, events_queue(name), key) for key in sorted(need.consumes)]
            bindings.append(_binding(REDELIVER, events_queue(name), name))
            bindings += [
                _binding(RETRY, retry_queue(name, n), retry_queue(name, n)) for n in range(1, len(delays) + 1)
            ]
            bindings.append(_binding(DLX, dead_letter_queue(name), name))
    return {
        "rabbit_version": spec.config.rabbitmq.version,
        "rabbitmq_version": spec.config.rabbitmq.version,
        "users": users,
        "vhosts": [{"name": VHOST}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "parameters": [],
        "global_parameters": [],
        "policies": [],
        "exchanges": [
            {
                "name": name,
                "vhost": VHOST,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in EXCHANGES
        ],
        "queues": queues,
        "bindings": bindings,
    }


def _consumer_queues(name: str, delays: list[int]) -> list[dict[str, Any]]:
    queues = [
        _durable_queue(
            events_queue(name),
            {"x-dead-letter-exchange": DLX, "x-dead-letter-routing-key": name, "x-queue-type": "classic"},
        )
    ]
    for n, delay in enumerate(delays, start=1):
        queues.append(
            _durable_queue(
                retry_queue(name, n),
                {
                    "x-dead-letter-exchange": REDELIVER,
                    "x-dead-letter-routing-key": name,
                    "x-message-ttl": delay,
                    "x-queue-type": "classic",
                },
            )
        )
    queues.append(_durable_queue(dead_letter_queue(name), {"x-queue-type": "classic"}))
    return queues


def _user(name: str, password: str, tags: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "password_hash": password_hash(name, password),
        "hashing_algorithm": HASHING_ALGORITHM,
        "tags": tags,
    }


def _permission(user: str, configure: str, write: str, read: str) -> dict[str, Any]:
    return {"user": user, "vhost": VHOST, "configure": configure, "write": write, "read": read}


def _topic(user: str, exchange: str, write: str) -> dict[str, Any]:
    return {"user": user, "vhost": VHOST, "exchange": exchange, "write": write, "read": NOTHING}


def disk_free_limit_bytes(storage: str) -> int:
    """The broker's free-disk alarm threshold for a volume of *storage* (``1Gi``): a tenth of it, at
    least 48 MiB. Below it RabbitMQ blocks publishers (services keep events in their outboxes)
    instead of writing on until the disk is full and the node crashes; the alarm clears by itself
    when space returns. The default (50 MB) leaves too little room for the broker's own writes on a
    small volume."""
    return max(48 * 1024**2, memory_bytes(storage) // 10)
