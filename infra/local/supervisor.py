"""The `platform dev` supervisor: restarts any component that dies, with backoff, like a kubelet.

    python -m infra.local.supervisor --state-dir .platform/dev

`up` spawns it (detached, recorded as the ``supervisor`` component) once the platform is healthy.
Every :data:`POLL` seconds it checks each component's root process by PID and start time; a dead
one is restarted by :meth:`DevRunner.restart_dead` on its recorded ports, after a delay that
doubles on each crash within :data:`STABLE` seconds of the last restart (:data:`FIRST_DELAY` up to
:data:`MAX_DELAY`). Each event is one line in ``logs/supervisor.log``; `status` shows the restart
count. It exits on SIGTERM (`down` stops it first) or when the state file no longer names it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from infra.errors import PlatformError
from infra.local.state import DevState, read_state

POLL = 0.5
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
#: A component that stayed up this long after a restart starts again from FIRST_DELAY.
STABLE = 60.0


def say(message: str) -> None:
    """One timestamped line on stdout (the supervisor's log file)."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", flush=True)


class Backoff:
    """Per-component restart delays: doubling while it keeps crashing, reset once it is stable."""

    def __init__(self) -> None:
        self.delay: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def next_delay(self, name: str, now: float) -> float:
        """The delay before the next restart of *name* (and remember it)."""
        previous = self.delay.get(name)
        if previous is None or now - self.last.get(name, 0.0) > STABLE:
            delay = FIRST_DELAY
        else:
            delay = min(previous * 2, MAX_DELAY)
        self.delay[name] = delay
        return delay

    def restarted(self, name: str, now: float) -> None:
        """Record a restart attempt at *now*."""
        self.last[name] = now


def _dead(state: DevState) -> list[str]:
    names = state.expected or [c.name for c in state.components]
    dead = []
    for name in names:
        if name == "supervisor":
            continue
        component = state.component(name)
        if component is None or not component.root_alive():
            dead.append(name)
    return dead


def _mine(state: DevState | None, pid: int) -> bool:
    me = state.component("supervisor") if state else None
    return me is not None and me.pid == pid


def run(state_dir: Path) -> int:
    """Watch and heal until stopped."""
    import os

    from infra.local.runner import DevOptions, DevRunner

    def stop(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    me = os.getpid()
    backoff = Backoff()
    due: dict[str, float] = {}
    say(f"supervising {state_dir} (pid {me})")
    try:
        while True:
            time.sleep(POLL)
            state = read_state(state_dir)
            if not _mine(state, me):
                if state is None or state.complete or state.component("supervisor") is not None:
                    say("no longer named in the state file; exiting")
                    return 0
                continue  # `up` is still writing the state: wait
            assert state is not None
            now = time.monotonic()
            dead = _dead(state)
            for name in list(due):
                if name not in dead:
                    due.pop(name)
            for name in dead:
                if name not in due:
                    delay = backoff.next_delay(name, now)
                    due[name] = now + delay
                    say(f"{name} is not running; restarting in {delay:g}s")
            ready = [n for n in dead if due[n] <= now]
            if not ready:
                continue
            runner = DevRunner(
                DevOptions(state_dir=state_dir, stack=state.stack, reload=state.reload, progress=say)
            )
            for name in ready:
                backoff.restarted(name, now)
                due.pop(name, None)
            try:
                restarted = runner.restart_dead(set(ready), migrate=False)
            except PlatformError as exc:
                say(f"restart failed: {str(exc).splitlines()[0]}")
                continue
            if restarted:
                say(f"restarted: {', '.join(restarted)}")
    except KeyboardInterrupt:
        say("stopping (SIGTERM)")
        return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``--state-dir``."""
    parser = argparse.ArgumentParser(description="restart crashed `platform dev` components")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return run(args.state_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
