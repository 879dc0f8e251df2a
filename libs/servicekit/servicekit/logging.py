"""Structured logging: one JSON object per line on stdout (and optionally a file).

Every line carries ``timestamp``, ``level``, ``service``, ``request_id`` and ``event``. The stdlib
root logger is routed through the same renderer, so uvicorn's and SQLAlchemy's lines match.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import structlog

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


def configure_logging(
    service: str, *, level: str = "INFO", fmt: str = "json", log_file: str | None = None
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call again (handlers are replaced)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _service_adder(service),
        _add_request_id,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # test clients would log every request
    # uvicorn's access log duplicates ours; keep its error log.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; call ``log.info("event_name", key=value)``."""
    return structlog.stdlib.get_logger(name)
