"""Facts about the running ``platform`` process that commands may act on."""

from __future__ import annotations

#: True when ``platform`` runs as its console script, which exits right after one command; False when
#: :func:`cli.main.main` is called in-process (tests, embedding), where process-wide tuning must not leak.
short_lived = False
