"""The access log's fast paths: DirectLogger writes exactly structlog's lines; cached timestamps."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import structlog
from servicekit.logging import (
    DirectLogger,
    configure_logging,
    flush_logs,
    get_logger,
    reset_request_id,
    set_request_id,
    utc_timestamp,
)


def _lines(path: Path) -> list[str]:
    flush_logs()
    return path.read_text().splitlines()


def _without_timestamp(line: str) -> str:
    return line[: line.index('"timestamp":')] + line[line.index(',"service":') :]


def test_direct_lines_equal_structlog_lines_in_json(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    configure_logging("direct-svc", level="INFO", log_file=str(log_file))
    token = set_request_id("rid-1")
    structlog.contextvars.bind_contextvars(tenant="t1")
    try:
        fields = {"method": "GET", "path": "/a", "status": 200, "duration_ms": 0.5, "client": None}
        get_logger("servicekit.access").info("request", **fields)
        DirectLogger("servicekit.access").info("request", **fields)
        DirectLogger("servicekit.access").debug("request", **fields)  # below the level
    finally:
        structlog.contextvars.clear_contextvars()
        reset_request_id(token)
        configure_logging("direct-svc")
    lines = _lines(log_file)
    assert len(lines) == 2
    assert _without_timestamp(lines[0]) == _without_timestamp(lines[1])
    parsed = json.loads(lines[1])
    assert (parsed["request_id"], parsed["tenant"], parsed["level"]) == ("rid-1", "t1", "info")
    assert parsed["timestamp"].endswith("Z")


def test_direct_lines_follow_level_and_console_format(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    configure_logging("direct-svc", level="DEBUG", fmt="console", log_file=str(log_file))
    try:
        get_logger("servicekit.access").debug("probe", path="/healthz")
        DirectLogger("servicekit.access").debug("probe", path="/healthz")
    finally:
        configure_logging("direct-svc")
    structlog_line, direct_line = _lines(log_file)
    assert all(part in direct_line for part in ("probe", "path=/healthz", "[debug"))
    assert structlog_line.split(" ", 1)[1] == direct_line.split(" ", 1)[1]  # after the timestamp


def test_direct_lines_render_stack_info_like_structlog(tmp_path: Path) -> None:
    log_file = tmp_path / "svc.log"
    configure_logging("direct-svc", level="INFO", log_file=str(log_file))
    try:
        DirectLogger("x").info("with_stack", stack_info=True)
    finally:
        configure_logging("direct-svc")
    (line,) = _lines(log_file)
    assert "stack" in json.loads(line)
    assert "stack_info" not in json.loads(line)


def test_cached_timestamps_equal_datetime_formatting() -> None:
    rng = random.Random(7)
    boundary = 1_767_225_600  # 2026-01-01T00:00:00Z
    moments = [0.0, 1.5, boundary - 1e-6, boundary - 4e-7, boundary, boundary + 1e-6, boundary + 6e-7]
    moments += [rng.uniform(0, 2e9) for _ in range(20_000)]
    for now in moments:
        expected = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")[:-6] + "Z"
        assert utc_timestamp(now) == expected, now
