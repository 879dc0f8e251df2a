"""Run the Pulumi program offline, under the SDK's mock runtime, and capture every resource.

This is Pulumi's documented unit-test path (``pulumi.runtime.set_mocks``): the program runs in-process,
every resource registration reaches :class:`CaptureMocks` instead of the engine, and nothing talks to
a cluster, a registry or the Pulumi service.

What comes out:

* :func:`render_stack` - the Kubernetes objects as manifests (real camelCase field names, ints stay
  ints, every Secret ``data``/``stringData`` value and every Pulumi-secret value replaced by
  :data:`REDACTED`), sorted by ``(kind, namespace, name)``, byte-identical on rerun.
* :func:`render` - the same plus the non-Kubernetes resources (random passwords, docker images) as
  ``{"type", "name", "inputs"}`` records and the stack outputs, kept apart from the manifests so
  manifest consumers (schema validation, checkov, diff) only ever see Kubernetes objects.

Mocked ``RandomPassword`` results are deterministic (derived from the stack, resource name and
``keepers``) so reruns are identical; they never reach the output because every Secret value is
redacted. The program runs as a preview whose mocks answer only the outputs it reads (Kubernetes
``metadata``, password ``result``, image ``imageName``/``repoDigest``).

Speed (measured by ``bench/render.py``, see docs/benchmarks.md): while a render runs, the cyclic
garbage collector is paused (the SDK allocates hundreds of thousands of short-lived objects, and each
full collection walks every class ``pulumi_kubernetes`` defined) and the SDK skips capturing a
Python stack trace per resource (source positions for the engine's diagnostics; the mock monitor
discards them). Neither changes what the program registers: the output is byte-identical.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import hashlib
import json
import runpy
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.spec import REPO_ROOT, config_from_stack_file, load_spec, stack_file

#: Marker that replaces every secret value in rendered output.
REDACTED = "<redacted>"
PROJECT = "platform"

# Pulumi's wire format for secrets and resource references (pulumi.runtime.rpc).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
_IMAGE_TYPE = "docker:index/image:Image"


@dataclass
class Captured:
    """One resource registration as the mock monitor saw it."""

    type: str
    name: str
    inputs: dict[str, Any]
    #: False for component resources (``platform:*``), which have no inputs of their own.
    custom: bool = True
    #: Logical names of the resources this one depends on (``depends_on`` and the resources whose
    #: outputs its inputs use).
    dependencies: tuple[str, ...] = ()
    #: Logical name of the parent component ('' for top-level resources).
    parent: str = ""
    #: Logical name of the explicit provider ('' = the default provider of the package).
    provider: str = ""
    #: Engine options that change the plan: ``replace_with`` (logical names), ``replace_on_changes``,
    #: ``delete_before_replace``, ``ignore_changes``.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rendered:
    """Everything one offline run of the program produced."""

    manifests: list[dict[str, Any]]
    #: Non-Kubernetes resources (``random:*``, ``docker:*``), sorted by (type, name).
    resources: list[dict[str, Any]] = field(default_factory=list)
    #: Stack outputs (``pulumi.export``), secrets redacted.
    outputs: dict[str, Any] = field(default_factory=dict)
    #: Every registration, components included (logical name, type, explicit dependencies).
    captured: list[Captured] = field(default_factory=list)

    def depends_on(self, name: str) -> tuple[str, ...]:
        """Logical names resource *name* was declared to depend on (empty if unknown)."""
        for res in self.captured:
            if res.name == name:
                return res.dependencies
        return ()


def mock_password(stack: str, name: str, length: int, keepers: dict[str, Any] | None = None) -> str:
    """The deterministic stand-in a mocked RandomPassword resolves to.

    Its ``keepers`` (rotation) feed it, as they would replace the real one: a rotated password gets a
    new value, so every Secret holding it gets a new digest (``platform diff``).
    """
    seed = f"mock-password:{stack}:{name}"
    if keepers:
        seed += ":" + json.dumps(keepers, sort_keys=True)
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return (digest * (length // len(digest) + 1))[:length]


def _urn_name(urn: str) -> str:
    """The logical name at the end of a URN (``urn:pulumi:dev::platform::<type>::<name>``)."""
    return urn.rsplit("::", 1)[-1] if urn else ""


def _provider_name(reference: str) -> str:
    """The provider's logical name in a provider reference (``<urn>::<id>``); '' for none."""
    parts = reference.split("::")
    return parts[3] if len(parts) >= 5 else ""


@dataclass(frozen=True)
class _Registration:
    dependencies: tuple[str, ...]
    parent: str
    provider: str
    options: dict[str, Any]


def _registration(request: Any) -> _Registration:
    options: dict[str, Any] = {}
    if request.replace_with:
        options["replace_with"] = sorted(_urn_name(urn) for urn in request.replace_with)
    if request.replaceOnChanges:
        options["replace_on_changes"] = sorted(request.replaceOnChanges)
    if request.deleteBeforeReplaceDefined:
        options["delete_before_replace"] = bool(request.deleteBeforeReplace)
    if request.ignoreChanges:
        options["ignore_changes"] = sorted(request.ignoreChanges)
    return _Registration(
        dependencies=tuple(sorted(_urn_name(urn) for urn in request.dependencies)),
        parent=_urn_name(request.parent),
        provider=_provider_name(request.provider),
        options=options,
    )


def _make_monitor(mocks: Any, registrations: dict[tuple[str, str], _Registration]) -> Any:
    from pulumi.runtime.mocks import MockMonitor

    class DependencyMonitor(MockMonitor):
        """The SDK's mock monitor, also recording each registration's graph: dependencies, parent,
        provider and the engine options that change a plan."""

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            registrations[(request.type, request.name)] = _registration(request)
            return super().RegisterResource(request)

    return DependencyMonitor(mocks)


def _make_mocks(stack: str, captured: list[Captured]) -> Any:
    from pulumi.runtime import Mocks

    class CaptureMocks(Mocks):
        """Records every registration; answers with the outputs the program reads (see :func:`_run`)."""

        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            inputs = args.inputs
            captured.append(Captured(args.typ, args.name, dict(inputs), bool(args.custom)))
            if args.typ == _PASSWORD_TYPE:
                result = mock_password(stack, args.name, int(inputs.get("length", 32)), inputs.get("keepers"))
                return f"{args.name}-id", {"result": result}
            if args.typ == _IMAGE_TYPE:
                # Nothing is pushed offline: no registry digest, so references pin the content-hash tag.
                return f"{args.name}-id", {"imageName": inputs.get("imageName"), "repoDigest": ""}
            return f"{args.name}-id", {"metadata": inputs["metadata"]} if "metadata" in inputs else {}

        def call(self, args: Any) -> tuple[dict[str, Any], None]:
            return {}, None

    return CaptureMocks()


#: The Pulumi secrets the program reads (``pulumi config set --secret platform:<key>``). Their values
#: never exist offline: every render sees these placeholders, marked secret, so the code paths that
#: use them run and their output is redacted like any other secret.
SECRET_CONFIG_PLACEHOLDERS = {
    "registryPassword": "offline-placeholder-registry-password",
    "alertWebhookUrl": "https://alerts.invalid/offline-placeholder",
}


def _engine_config(config: dict[str, Any]) -> dict[str, str]:
    """Stack-file values as the engine passes them: strings as-is, everything else JSON; plus the
    placeholders of :data:`SECRET_CONFIG_PLACEHOLDERS`."""
    values = {
        f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }
    values |= {f"{PROJECT}:{key}": value for key, value in SECRET_CONFIG_PLACEHOLDERS.items()}
    return values


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def _redact_all(value: Any) -> Any:
    """Keep the shape of a secret value (a Secret's ``stringData`` map stays a map), redact every leaf."""
    if _is_secret(value):
        return _redact_all(value.get("value"))
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v) for v in value]
    return REDACTED


def _clean(value: Any) -> Any:
    """Wire values -> manifest values: secrets redacted, integral floats back to ints."""
    if _is_secret(value):
        return _redact_all(value.get("value"))
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redact_secret(manifest: dict[str, Any]) -> dict[str, Any]:
    for key in ("data", "stringData"):
        values = manifest.get(key)
        if isinstance(values, dict):
            manifest[key] = {k: REDACTED for k in values}
    return manifest


def _sort_key(manifest: dict[str, Any]) -> tuple[str, str, str]:
    meta = manifest.get("metadata") or {}
    return (manifest.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def sort_manifests(manifests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifests sorted by (kind, namespace, name), the order every output uses."""
    return sorted(manifests, key=_sort_key)


def to_manifests(captured: Iterable[Captured]) -> list[dict[str, Any]]:
    """Kubernetes manifests from captured registrations, cleaned, redacted and sorted."""
    manifests = []
    for res in captured:
        if not res.type.startswith("kubernetes:") or res.type.startswith("pulumi:providers:"):
            continue
        manifest = _clean(res.inputs)
        if manifest.get("kind") == "Secret":
            manifest = _redact_secret(manifest)
        manifests.append(manifest)
    return sorted(manifests, key=_sort_key)


def _other_resources(captured: Iterable[Captured]) -> list[dict[str, Any]]:
    others = [
        {"type": r.type, "name": r.name, "inputs": _clean(r.inputs)}
        for r in captured
        if r.custom and not r.type.startswith(("kubernetes:", "pulumi:"))
    ]
    return sorted(others, key=lambda r: (r["type"], r["name"]))


def _run(stack: str, root: Path, program: Callable[[], None] | None) -> Rendered:
    import pulumi
    from pulumi.runtime import set_all_config, set_mocks
    from pulumi.runtime.settings import ROOT, SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    captured: list[Captured] = []
    registrations: dict[tuple[str, str], _Registration] = {}
    ROOT.set(None)
    set_all_config(
        _engine_config(config_from_stack_file(stack_file(root, stack))),
        [f"{PROJECT}:{key}" for key in SECRET_CONFIG_PLACEHOLDERS],
    )
    mocks = _make_mocks(stack, captured)
    # A preview: the SDK then leaves the outputs the mocks do not answer unknown instead of translating
    # every input back into typed outputs (a sixth of a large render); the program reads only metadata,
    # password results and image references, which the mocks answer. What it registers is the same.
    set_mocks(mocks, project=PROJECT, stack=stack, preview=True, monitor=_make_monitor(mocks, registrations))
    SETTINGS.outputs.clear()

    def default_program() -> None:
        # The real program, exactly as `pulumi up` runs it.
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    _sync_await(run_pulumi_func(program or default_program))
    stack_resource = ROOT.get()
    outputs: dict[str, Any] = {}
    for key, value in sorted((stack_resource.outputs if stack_resource else {}).items()):
        output = pulumi.Output.from_input(value)
        resolved = _sync_await(output.future())
        outputs[key] = REDACTED if _sync_await(output.is_secret()) else _clean(resolved)
    for res in captured:
        registration = registrations.get((res.type, res.name))
        if registration is not None:
            res.dependencies = registration.dependencies
            res.parent = registration.parent
            res.provider = registration.provider
            res.options = registration.options
    return Rendered(to_manifests(captured), _other_resources(captured), outputs, captured)


_fast_lock = threading.Lock()
_fast_depth = 0
_fast_restore: list[Callable[[], None]] = []
_freeze_on_resume = False


def _empty_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def _resume_gc() -> None:
    global _freeze_on_resume
    if _freeze_on_resume:
        # Everything allocated while paused sits in the young generation; the first collection
        # after resuming would walk all of it (~0.5 s after a 100-service render).
        gc.freeze()
        _freeze_on_resume = False
    gc.enable()


def _pause() -> None:
    if gc.isenabled():
        gc.disable()
        _fast_restore.append(_resume_gc)
    from pulumi.runtime import resource as sdk_resource

    original = getattr(sdk_resource, "_get_stack_trace", None)
    if original is not None:  # an SDK without it has nothing to skip
        sdk_resource._get_stack_trace = _empty_stack_trace
        _fast_restore.append(lambda: setattr(sdk_resource, "_get_stack_trace", original))


def _restore() -> None:
    while _fast_restore:
        _fast_restore.pop()()


@contextlib.contextmanager
def fast_runtime(freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic GC and the SDK's per-resource stack capture for the duration (re-entrant).

    Both are process-wide; the first caller in sets them, the last one out restores them, so
    overlapping renders in several threads are safe. *freeze* (for short-lived processes such as
    the CLI) moves what the render left into the GC's permanent generation when it resumes, so no
    later collection walks it; those objects are then never collected.
    """
    global _fast_depth, _freeze_on_resume
    with _fast_lock:
        _fast_depth += 1
        _freeze_on_resume = _freeze_on_resume or freeze
        if _fast_depth == 1:
            try:
                _pause()
            except BaseException:  # e.g. the SDK is missing: leave nothing paused
                _fast_depth -= 1
                _restore()
                raise
    try:
        yield
    finally:
        with _fast_lock:
            _fast_depth -= 1
            if _fast_depth == 0:
                _restore()


def _ensure_current_loop() -> None:
    """Give the thread a current event loop when it has none: Pulumi's SDK asks for one, and
    ``asyncio.run`` (or Playwright's sync API) ends by leaving the thread without any."""
    import asyncio

    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_isolated(fn: Callable[[], Any]) -> Any:
    """Run *fn* in a fresh context (and a fresh thread with its own event loop, if one is running).

    Pulumi keeps its runtime state in context variables; a fresh context makes every run start
    clean and leaves the caller's settings (e.g. a test's mocks) untouched.
    """
    import asyncio

    def target() -> Any:
        return contextvars.Context().run(fn)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _ensure_current_loop()
        return target()
    result: dict[str, Any] = {}

    def in_thread() -> None:
        try:
            result["value"] = target()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=in_thread, name="pulumi-offline")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def render(
    stack: str, root: Path = REPO_ROOT, program: Callable[[], None] | None = None, *, freeze: bool = False
) -> Rendered:
    """Run the program for *stack* under mocks; *program* replaces ``build_platform`` (tests).

    *freeze*: see :func:`fast_runtime` (only for processes that exit soon after).
    """
    load_spec(stack, root)  # fail fast with a SpecError (file/field/hint) before starting the runtime
    with fast_runtime(freeze):
        return run_isolated(lambda: _run(stack, root, program))


def render_stack(stack: str, root: Path = REPO_ROOT, *, freeze: bool = False) -> list[dict[str, Any]]:
    """The Kubernetes manifests of *stack*, sorted by (kind, namespace, name); see the module doc."""
    return render(stack, root, freeze=freeze).manifests


def dump_manifests(manifests: list[dict[str, Any]], fmt: str = "yaml") -> str:
    """Manifests as multi-document YAML (``---`` separated) or a JSON list; stable key order."""
    if fmt == "json":
        return json.dumps(manifests, indent=2, sort_keys=True) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown format {fmt!r}; use 'yaml' or 'json'")
    import yaml

    # libyaml's emitter when PyYAML was built with it (same output, ~10x faster); pure Python otherwise.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    options = {"Dumper": dumper, "sort_keys": True, "default_flow_style": False, "width": 1_000_000}
    docs = [yaml.dump(m, **options) for m in manifests]
    return "".join(f"---\n{doc}" for doc in docs)


def manifest_filename(manifest: dict[str, Any]) -> str:
    """``<kind>-<name>.yaml`` in lowercase, e.g. ``deployment-auth-svc.yaml``."""
    meta = manifest.get("metadata") or {}
    return f"{manifest.get('kind', 'object').lower()}-{meta.get('name', 'unnamed')}.yaml"


def write_manifests(manifests: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write one YAML file per manifest into *out_dir* (created); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in manifests:
        path = out_dir / manifest_filename(manifest)
        path.write_text(dump_manifests([manifest]), encoding="utf-8")
        written.append(path)
    return written
