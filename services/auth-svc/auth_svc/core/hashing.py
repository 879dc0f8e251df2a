"""Password hashing with bounded memory: a fixed number of argon2 hashes at once, a short queue, then 503.

Each argon2id hash holds :data:`servicekit.auth.PASSWORD_HASH_MEMORY_KIB` (19 MiB) while it runs.
Unbounded, every login (even for an unknown email: it verifies against a dummy hash so both paths
cost the same) would take a worker thread and that much memory, and ~20 parallel logins push the
process past its container limit. So:

- hashes run on a dedicated pool of ``slots`` threads, where ``slots`` is what a share
  (:data:`HASHING_MEMORY_SHARE`) of the process's memory limit holds (the cgroup's limit, or
  ``MEMORY_LIMIT_MIB``); a dedicated pool also bounds the malloc arenas that keep freed hash memory;
- at most ``queue`` more requests wait for a slot; any request beyond that is answered at once with
  503 ``busy`` and ``Retry-After`` (the client retries; nothing is held for it).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from servicekit.auth import PASSWORD_HASH_MEMORY_KIB, hash_password, needs_rehash, verify_password
from servicekit.errors import Unavailable

T = TypeVar("T")
#: Share of the memory limit that password hashing may use (the rest is the process itself).
HASHING_MEMORY_SHARE = 0.25
#: Requests that may wait for a slot, per slot.
QUEUE_PER_SLOT = 4
#: Seconds a client is told to wait after a 503.
RETRY_AFTER_S = 1
#: When neither the cgroup nor ``MEMORY_LIMIT_MIB`` gives a limit: the manifests' default limit.
DEFAULT_MEMORY_LIMIT_MIB = 256
CGROUP_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
#: cgroup v1 reports "no limit" as a huge number; anything above this is no limit.
_UNLIMITED_BYTES = 1 << 50


def cgroup_memory_limit_mib(files: tuple[Path, ...] = CGROUP_LIMIT_FILES) -> int | None:
    """The container's memory limit in MiB from the cgroup, or None when unlimited or unknown."""
    for file in files:
        try:
            raw = file.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < _UNLIMITED_BYTES:
            return int(raw) // (1024 * 1024)
        return None
    return None


def hashing_slots(memory_limit_mib: int, share: float = HASHING_MEMORY_SHARE) -> int:
    """How many hashes fit in *share* of *memory_limit_mib* (at least one)."""
    per_hash_mib = PASSWORD_HASH_MEMORY_KIB / 1024
    return max(1, math.floor(memory_limit_mib * share / per_hash_mib))


class PasswordHashing:
    """Runs argon2 hashes on ``slots`` dedicated threads; answers 503 when ``queue`` requests wait."""

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="argon2")
        self._admitted = 0  # running + waiting; only touched on the event loop
        self._dummy_hash: str | None = None

    @classmethod
    def for_limit(cls, memory_limit_mib: int | None, slots: int | None = None) -> PasswordHashing:
        """Slots from the memory limit (cgroup, else *memory_limit_mib*, else the default) unless given."""
        limit = cgroup_memory_limit_mib() or memory_limit_mib or DEFAULT_MEMORY_LIMIT_MIB
        count = slots or hashing_slots(limit)
        return cls(count, count * QUEUE_PER_SLOT)

    async def _run(self, func: Callable[..., T], *args: str) -> T:
        if self._admitted >= self.slots + self.queue:
            raise Unavailable(
                "too many logins at once; retry shortly",
                code="busy",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        finally:
            self._admitted -= 1

    async def hash(self, password: str) -> str:
        """An argon2id hash of *password*."""
        return await self._run(hash_password, password)

    async def check(self, password_hash: str | None, password: str) -> bool:
        """True when *password* matches; with no hash, spends the same work and returns False."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(hash_password, "not-a-real-password-0")
        ok = await self._run(verify_password, password_hash or self._dummy_hash, password)
        return ok and password_hash is not None

    @staticmethod
    def should_rehash(password_hash: str) -> bool:
        """True when the stored hash uses other parameters than the current ones."""
        return needs_rehash(password_hash)

    def close(self) -> None:
        """Stop the threads (running hashes finish)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
