"""The supervisor's restart back-off: doubling while a component keeps crashing, reset once stable."""

from __future__ import annotations

from infra.local.supervisor import FIRST_DELAY, MAX_DELAY, STABLE, Backoff


def test_delay_doubles_per_crash_up_to_the_cap_and_resets_after_a_stable_run() -> None:
    backoff, now, delays = Backoff(), 1000.0, []
    for _ in range(9):
        delays.append(backoff.next_delay("redis", now))
        backoff.restarted("redis", now)
        now += 1.0  # crashes again a second after each restart
    assert delays[:4] == [FIRST_DELAY, FIRST_DELAY * 2, FIRST_DELAY * 4, FIRST_DELAY * 8]
    assert delays[-1] == MAX_DELAY
    assert backoff.next_delay("postgres", now) == FIRST_DELAY  # per component
    assert backoff.next_delay("redis", now + STABLE + 1) == FIRST_DELAY  # it ran long enough
