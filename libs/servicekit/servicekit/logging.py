"""Structured logging: one JSON object per line on stdout (and optionally a file).

Every line carries ``timestamp``, ``level``, ``service``, ``request_id`` and ``event``. The stdlib
root logger is routed through the same renderer, so uvicorn's and SQLAlchemy's lines match.

Hot path: ``get_logger()`` loggers are structlog-native (level filtered before any work, rendered
once, one locked write + flush per line to every sink). Only foreign stdlib records go through
``logging``'s handler machinery. Both paths share the sinks, so lines never interleave.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import threading
import time
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import structlog
from pydantic_core import PydanticSerializationError, to_json

from servicekit.process_state import PROCESS

_request_id: ContextVar[str | None] = ContextVar("servicekit_request_id", default=None)
_HANDLER_MARK = "_servicekit_handler"


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def set_request_id(value: str | None) -> Any:
    """Bind the request id for this context; returns a token for :func:`reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: Any) -> None:
    """Restore the request id that was bound before :func:`set_request_id`."""
    _request_id.reset(token)


def _add_request_id(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("request_id", _request_id.get())
    return event_dict


def _service_adder(service: str) -> structlog.types.Processor:
    def add_service(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def utc_timestamp(now: float | None = None) -> str:
    """ISO 8601 UTC with microseconds and a ``Z`` suffix (``2026-01-02T03:04:05.000006Z``) of *now*
    (default: the current time); the date and time part is formatted once per second."""
    if now is None:
        now = time.time()
    second = int(now)
    micros = round((now - second) * 1_000_000)  # rounded like datetime.fromtimestamp
    if micros == 1_000_000:
        second, micros = second + 1, 0
    if second != PROCESS.timestamp_second:
        PROCESS.timestamp_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        PROCESS.timestamp_second = second
    return f"{PROCESS.timestamp_text}.{micros:06d}Z"


def _add_timestamp(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``timestamp``: :func:`utc_timestamp`."""
    event_dict["timestamp"] = utc_timestamp()
    return event_dict


def _render_json(_: Any, __: str, event_dict: dict[str, Any]) -> str:
    """The event as one compact JSON object; values JSON cannot hold are rendered with ``repr``."""
    try:
        return to_json(event_dict, fallback=repr).decode()
    except (PydanticSerializationError, ValueError, TypeError):  # e.g. bytes that are not UTF-8
        return json.dumps(event_dict, default=repr)


#: Bytes written in one system call at most when lines are batched: a pipe write of up to PIPE_BUF
#: (4096 on Linux) is atomic, so processes sharing stdout never interleave inside a line.
MAX_WRITE_BYTES = 4096


class _Sinks:
    """The streams every line goes to: whole lines, written and flushed under one lock.

    On a thread running an event loop, INFO/DEBUG lines are batched: the first line of a loop
    iteration schedules a flush with ``call_soon``, so every line logged in that iteration (under load,
    many requests' access lines) goes out in one write per sink instead of one each, microseconds
    later. Warnings and errors, and every line logged outside an event loop, flush at once (after the
    pending lines, keeping their order). ``flush()`` runs on shutdown, on reconfiguration and at exit.
    """

    def __init__(self, streams: list[IO[str]], owned: list[IO[str]]) -> None:
        self.streams = streams
        self.owned = owned  # opened here (the log file), closed on reconfiguration
        self.lock = threading.Lock()
        self._pending: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    def write(self, line: str, *, urgent: bool = False) -> None:
        loop = None if urgent else _running_loop()
        with self.lock:
            self._pending.append(line)
            if loop is None:
                self._flush_locked()
            elif self._flush_on is not loop:  # (a flush scheduled on a loop that died never ran)
                self._flush_on = loop
                loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._flush_on = None
        if not self._pending:
            return
        chunks = _chunks(self._pending, MAX_WRITE_BYTES)
        self._pending = []
        for stream in self.streams:
            try:
                for chunk in chunks:
                    stream.write(chunk)
                    stream.flush()
            except (OSError, ValueError):  # closed or broken stream: never fail the caller
                continue

    def close(self) -> None:
        with self.lock:
            self._flush_locked()
            for stream in self.owned:
                stream.close()
            self.streams = []


def _running_loop() -> asyncio.AbstractEventLoop | None:
    return asyncio._get_running_loop()  # None outside a loop (no exception raised and caught)


def _chunks(lines: list[str], limit: int) -> list[str]:
    """*lines* joined into as few strings as possible of at most *limit* bytes (a longer line alone)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode())
        if current and size + length > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += length
    chunks.append("".join(current))
    return chunks


class _LineLogger:
    """structlog's final logger: the renderer's string becomes one line in every sink (warnings and
    errors at once, the rest batched per event-loop iteration)."""

    def __init__(self, sinks: _Sinks) -> None:
        self._sinks = sinks

    def msg(self, message: str) -> None:
        self._sinks.write(message + "\n")

    def urgent(self, message: str) -> None:
        self._sinks.write(message + "\n", urgent=True)

    debug = info = log = msg
    warning = warn = error = err = critical = fatal = exception = urgent


class _SinkHandler(logging.Handler):
    """The root logger's handler: foreign records, rendered like ours, into the same sinks."""

    def __init__(self, sinks: _Sinks) -> None:
        super().__init__()
        self.sinks = sinks

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sinks.write(self.format(record) + "\n", urgent=record.levelno >= logging.WARNING)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.sinks.close()
        super().close()


def flush_logs() -> None:
    """Write out the lines still batched (servicekit's lifespan calls this when the app stops)."""
    if PROCESS.log_sinks is not None:
        PROCESS.log_sinks.flush()


atexit.register(flush_logs)


def configure_logging(
    service: str, *, level: str = "INFO", fmt: str = "json", log_file: str | None = None
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call again (sinks are replaced)."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_timestamp,
        _service_adder(service),
        _add_request_id,
    ]
    renderer: structlog.types.Processor = (
        _render_json if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    streams: list[IO[str]] = [sys.stdout]
    owned: list[IO[str]] = []
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        owned.append(open(log_file, "a", encoding="utf-8"))  # noqa: SIM115 - closed with the sinks
    sinks = _Sinks(streams + owned, owned)
    processors: list[structlog.types.Processor] = [
        *shared,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        renderer,
    ]
    PROCESS.log_level, PROCESS.log_processors, PROCESS.log_sinks = numeric_level, processors, sinks
    PROCESS.log_plain = [*shared, renderer]

    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: _LineLogger(sinks),
        cache_logger_on_first_use=False,  # a later configure_logging (another app) must apply
    )
    handler = _SinkHandler(sinks)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root.addHandler(handler)
    root.setLevel(numeric_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # test clients would log every request
    # uvicorn's access log duplicates ours; keep its error log.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; call ``log.info("event_name", key=value)``."""
    return structlog.get_logger(name)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}


class DirectLogger:
    """A logger for per-request lines (the access log): the same line :func:`get_logger`'s logger
    writes, without structlog's per-call machinery (the lazy proxy binds a new bound logger on every
    call, as loggers are not cached so that reconfiguration applies; then the level-filtering
    wrapper and its event processing). Here: the level check, the configured processors in order,
    one batched sink write. About half the CPU per line. DEBUG and INFO only; warnings and errors
    are rare and go through :func:`get_logger`.
    """

    def __init__(self, name: str | None = None) -> None:
        self._fallback = get_logger(name)  # before configure_logging: structlog's defaults

    def debug(self, event: str, **fields: Any) -> None:
        """Log *event* with *fields* at DEBUG."""
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log *event* with *fields* at INFO."""
        self._emit("info", event, fields)

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        processors, sinks = PROCESS.log_processors, PROCESS.log_sinks
        if processors is None or sinks is None:
            getattr(self._fallback, method)(event, **fields)
            return
        if _LEVELS[method] < PROCESS.log_level:
            return
        if "exc_info" not in fields and "stack_info" not in fields:
            processors = PROCESS.log_plain  # the two renderers would only pop those keys
        fields["event"] = event
        line: Any = fields
        for processor in processors:
            line = processor(None, method, line)
        sinks.write(line + "\n")
