"""Issue 14 item 5: a filling disk blocks RabbitMQ's publishers instead of killing the node, and
everything resumes by itself once space returns. A private node on a small tmpfs (mounted here)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from infra.local.rabbitmq_server import RabbitMqServer

from .conftest import run_async

TMPFS_MB = 160
LIMIT = 64 * 1024**2
QUEUE = "faults.disk"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    mount = Path(tempfile.mkdtemp(prefix="platform-faults-disk-"))
    mount.chmod(0o755)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0755", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"cannot mount a tmpfs (needs root): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def _fill(path: Path, leave_bytes: int) -> None:
    """Write a file until only *leave_bytes* remain free on its filesystem."""
    stat = os.statvfs(path.parent)
    size = stat.f_bavail * stat.f_frsize - leave_bytes
    with path.open("wb") as handle:
        handle.truncate(0)
        block = b"\0" * (1024 * 1024)
        for _ in range(max(0, size) // len(block)):
            handle.write(block)


async def _publish(url: str, count: int, wait_s: float) -> int:
    """Publish *count* persistent messages with confirms; return how many were confirmed in time."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(QUEUE, durable=True)
        confirmed = 0
        for n in range(count):
            message = aio_pika.Message(f"m{n}".encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            try:
                await asyncio.wait_for(channel.default_exchange.publish(message, routing_key=QUEUE), wait_s)
            except TimeoutError:
                return confirmed
            confirmed += 1
        return confirmed


def test_a_full_disk_blocks_publishers_and_everything_resumes_when_space_returns(small_disk: Path) -> None:
    server = RabbitMqServer(small_disk, plugins=(), disk_free_limit=LIMIT, start_timeout=90)
    server.start()
    try:
        url = server.url()
        assert run_async(_publish(url, 5, wait_s=10)) == 5

        filler = small_disk / "filler.bin"
        _fill(filler, leave_bytes=LIMIT // 2)  # another writer takes the disk below the alarm
        alarms = ""
        for _ in range(60):
            alarms = server.ctl("eval", "rabbit_alarm:get_alarms().")
            if "disk" in alarms:
                break
            run_async(asyncio.sleep(0.5))
        assert "disk" in alarms, alarms
        assert run_async(_publish(url, 1, wait_s=3)) == 0  # blocked, not failed or crashed
        assert server.is_running()

        filler.unlink()  # space returns: no restart, no command
        for _ in range(60):
            if "disk" not in server.ctl("eval", "rabbit_alarm:get_alarms()."):
                break
            run_async(asyncio.sleep(0.5))
        assert run_async(_publish(url, 5, wait_s=10)) == 5
        depth = server.ctl("list_queues", "name", "messages")
        assert f"{QUEUE}\t11" in depth or f"{QUEUE}\t10" in depth, depth
        assert server.is_running()
    finally:
        server.kill()
