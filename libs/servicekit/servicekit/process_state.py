"""The only process-wide state of servicekit, in one explicit object: :data:`PROCESS`.

Everything else belongs to an app (``app.state``: settings, runtime, metrics). What is shared by every
app of a process lives here, so it can be seen (and, in tests, inspected) in one place:

- the garbage-collector tuning of :func:`servicekit.app.tuned_gc`: how many apps are serving and
  the thresholds from before the first one started;
- the logging configuration :class:`servicekit.logging.DirectLogger` and :func:`flush_logs` use (the
  latest :func:`servicekit.logging.configure_logging`: level, processors, sinks);
- the cache of the formatted UTC second of :func:`servicekit.logging.utc_timestamp`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ProcessState:
    """State shared by every servicekit app in this process (see the module doc)."""

    #: Apps between start and stop; the GC is tuned while at least one serves.
    serving_apps: int = 0
    #: ``gc.get_threshold()`` from before the first app started serving (restored after the last).
    gc_thresholds: tuple[int, ...] = ()
    #: Level of the latest logging configuration (NOTSET before the first).
    log_level: int = logging.NOTSET
    #: Its processors (None before the first configuration) and the same without the renderers of
    #: stack and exception info.
    log_processors: list[Any] | None = None
    log_plain: list[Any] = field(default_factory=list)
    #: Its sinks (stdout, the log file): where lines go and what ``flush_logs`` flushes.
    log_sinks: Any = None
    #: The latest formatted UTC second and its text (formatting is most of a timestamp's cost).
    timestamp_second: int = -1
    timestamp_text: str = ""


#: The process's one instance.
PROCESS = ProcessState()
