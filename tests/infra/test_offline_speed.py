"""The offline engine's speed-ups change nothing in what a render produces."""

from __future__ import annotations

import contextlib
import gc
import json
import threading

import pytest
import yaml

from infra import offline
from infra.spec import STACKS


def _everything(result: offline.Rendered) -> str:
    captured = sorted(
        ((c.type, c.name, c.custom, c.dependencies, c.inputs) for c in result.captured), key=lambda c: c[:2]
    )
    return json.dumps([result.manifests, result.resources, result.outputs, captured], sort_keys=True)


def test_render_without_the_speed_ups_is_identical(monkeypatch):
    fast = offline.render("dev")
    monkeypatch.setattr(offline, "fast_runtime", contextlib.nullcontext)
    slow = offline.render("dev")
    assert _everything(fast) == _everything(slow)


@pytest.mark.parametrize("stack", STACKS)
def test_libyaml_dump_matches_the_pure_python_dumper(stack):
    manifests = offline.render_stack(stack)
    options = {"sort_keys": True, "default_flow_style": False, "width": 1_000_000}
    pure = "".join("---\n" + yaml.dump(m, Dumper=yaml.SafeDumper, **options) for m in manifests)
    assert offline.dump_manifests(manifests) == pure


def test_fast_runtime_restores_gc_and_stack_capture_after_overlapping_use():
    from pulumi.runtime import resource as sdk_resource

    original = sdk_resource._get_stack_trace
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other_thread() -> None:
        with offline.fast_runtime():
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=other_thread)
    thread.start()
    entered.wait(5)
    with offline.fast_runtime():
        assert not gc.isenabled()
        assert sdk_resource._get_stack_trace is not original
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    thread.join(5)
    assert gc.isenabled()
    assert sdk_resource._get_stack_trace is original


def test_fast_runtime_leaves_a_disabled_gc_disabled():
    gc.disable()
    try:
        with offline.fast_runtime():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_fast_runtime_restores_everything_when_pausing_fails(monkeypatch):
    def broken_pause() -> None:
        gc.disable()
        offline._fast_restore.append(gc.enable)
        raise ImportError("no pulumi")

    monkeypatch.setattr(offline, "_pause", broken_pause)
    with pytest.raises(ImportError), offline.fast_runtime():
        pass
    assert gc.isenabled()
    assert offline._fast_depth == 0


def test_fast_runtime_freezes_what_the_render_left_only_when_asked():
    before = gc.get_freeze_count()
    with offline.fast_runtime():
        leftovers = [[] for _ in range(1000)]
    assert gc.get_freeze_count() == before
    try:
        with offline.fast_runtime(freeze=True):
            leftovers += [[] for _ in range(1000)]
        assert gc.get_freeze_count() >= before + 2000
        assert gc.isenabled()
        frozen = gc.get_freeze_count()
        with offline.fast_runtime():  # the request does not outlive the render that made it
            leftovers += [[] for _ in range(1000)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
