"""`platform dev`: the whole platform as native processes on one machine.

``DevRunner(options).up()`` starts, on loopback ports, PostgreSQL (a database + role per service,
migrations run), Redis (rendered ACL), RabbitMQ (own node + epmd, rendered definitions), Prometheus
and Alertmanager (rendered configs and rules), the NGINX gateway (rendered config, TLS from a local
CA) and every service under uvicorn, then waits until each is healthy. Every step has a bounded
timeout; on any failure everything started so far is stopped and the error carries the log tail.
Every process is recorded in the state file the moment it is spawned, so `down` stops even what an
interrupted `up` left behind. Ports are remembered across `down`/`up` and RabbitMQ keeps one node
identity (so one data directory): queued messages survive any restart.

Once healthy, a detached supervisor (:mod:`infra.local.supervisor`) restarts any component that dies,
with backoff; `up` on a partly running platform starts only what is not running, and
:meth:`DevRunner.restart_component` restarts one component. ``down()`` stops the supervisor first,
then everything by PID, and reports survivors.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from infra.errors import PlatformError, UsageError
from infra.local import dev_config as cfg
from infra.local.acl_redis import AclRedisServer
from infra.local.command_server import CONTRACT_PREFIXES
from infra.local.monitoring_servers import AlertmanagerServer, PrometheusServer
from infra.local.nginx_server import NginxServer
from infra.local.ports import free_port, port_accepts
from infra.local.postgres_server import PostgresServer
from infra.local.process import ManagedProcess, ServerError, log_tail, proc_starttime
from infra.local.rabbitmq_server import PROMETHEUS, RabbitMqServer, amqp_handshake
from infra.local.server import LocalServer, child_env
from infra.local.state import (
    Component,
    DevState,
    clear_state,
    load_secrets,
    observe,
    read_ports,
    read_state,
    state_lock,
    stop_component,
    write_ports,
    write_state,
)
from infra.local.tls import ensure_tls
from infra.local.uvicorn_service import UvicornService
from infra.local.web_app import NextServer, web_argv
from infra.render.rabbitmq import disk_free_limit_bytes
from infra.spec import REPO_ROOT, PlatformSpec, ServiceSpec, load_spec

DEFAULT_STATE_DIR = REPO_ROOT / ".platform" / "dev"
#: Stop order: higher tiers first (the supervisor, the gateway, services, backends, epmd last).
TIER_SUPERVISOR, TIER_GATEWAY, TIER_SERVICE, TIER_MONITORING, TIER_BACKEND, TIER_EPMD = 5, 4, 3, 2, 1, 0
#: RabbitMQ's node name: one identity (one ``mnesia/<node>`` directory) whatever its ports.
RABBITMQ_NODE = "platform-dev@localhost"
#: How long `up`/`down`/`restart` wait for the supervisor to finish a restart it is doing.
LOCK_WAIT = 120.0
BACKENDS = ("postgres", "redis", "rabbitmq")
MIGRATION_TIMEOUT = 120.0
#: How long a service waits for the backends it needs (their own start timeouts are shorter).
BACKEND_TIMEOUT = 150.0
ABORT_JOIN_TIMEOUT = 30.0


@dataclass
class DevOptions:
    """How to run: where state lives, fixed ports (else free ones), hot reload, bounds."""

    state_dir: Path = DEFAULT_STATE_DIR
    stack: str = "dev"
    ports: dict[str, int] = field(default_factory=dict)
    reload: bool = False
    scrape_interval: str | None = None
    service_timeout: float = 60.0
    supervise: bool = True
    progress: Callable[[str], None] = lambda _line: None


@dataclass
class UpResult:
    """What `up` did: the state, and whether the platform was already running (nothing changed)."""

    state: DevState
    already_running: bool = False


@dataclass
class DownResult:
    """What `down` did: components stopped, and PIDs that survived (should be empty)."""

    stopped: list[str]
    survivors: dict[str, list[int]]


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        # as the servers bind: a port whose old connections linger in TIME_WAIT is still free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((cfg.HOST, port))
        except OSError:
            return False
    return True


def resolve_ports(
    keys: list[str], requested: Mapping[str, int], previous: Mapping[str, int]
) -> dict[str, int]:
    """Requested ports, else the previous run's when still free, else fresh free ones; no duplicates."""
    unknown = sorted(set(requested) - set(keys))
    if unknown:
        raise UsageError(f"unknown port name(s): {', '.join(unknown)}", hint=f"known: {', '.join(keys)}")
    ports: dict[str, int] = {}
    for key in keys:
        if key in requested:
            ports[key] = requested[key]
    taken = set(ports.values())
    if len(taken) != len(ports):
        raise UsageError("the same port is requested twice", hint="give every component its own port")
    for key in keys:
        if key in ports:
            continue
        old = previous.get(key)
        if old and old not in taken and _bindable(old):
            ports[key] = old
        else:
            port = free_port()
            while port in taken:
                port = free_port()
            ports[key] = port
        taken.add(ports[key])
    return ports


def probe(component: Component) -> bool:
    """Is the component healthy now? (HTTP 200, a TCP connect, an AMQP handshake, or just alive)."""
    if not component.root_alive() or not component.health:
        return False
    kind, _, target = component.health.partition(":")
    if kind == "pid":
        return True
    try:
        if kind in ("http", "https"):
            return httpx.get(component.health, timeout=2.0).status_code == 200
        if kind == "tcp":
            return port_accepts(int(target))
        if kind == "amqp":
            return amqp_handshake(cfg.HOST, int(target))
    except (httpx.HTTPError, OSError):
        return False
    return False


class _AbortError(Exception):
    """Another step failed; this one stops early."""


class DevRunner:
    """Brings the local platform up and down. See the module docstring."""

    def __init__(self, options: DevOptions, spec: PlatformSpec | None = None, root: Path = REPO_ROOT) -> None:
        self.options = options
        self.root = root
        self.state_dir = Path(options.state_dir).resolve()
        self.layout = cfg.Layout(self.state_dir)
        self._spec = spec
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._aborted = threading.Event()
        self._pending: list[LocalServer] = []
        self._t0 = time.monotonic()
        self.state: DevState | None = None
        self._carry: dict[str, tuple[int, float]] = {}
        #: The web app's command line once looked up (None inside: it cannot run here).
        self._web_found: tuple[list[str] | None] | None = None

    @property
    def spec(self) -> PlatformSpec:
        """The spec, loaded at first use (``up`` reads it at boot, from the repo's files)."""
        if self._spec is None:
            self._spec = load_spec(self.options.stack, self.root)
        return self._spec

    def _say(self, name: str, message: str) -> None:
        self.options.progress(f"[{time.monotonic() - self._t0:5.1f}s] {name:<18} {message}")

    # ---------------------------------------------------------------- up

    def expected(self, spec: PlatformSpec) -> list[str]:
        """Every component a complete platform runs."""
        names = [*BACKENDS, "epmd", "prometheus", "alertmanager", "gateway", *(s.name for s in spec.services)]
        if spec.web is not None and self._web_argv(spec) is not None:
            names.append(spec.web.name)
        return [*names, "supervisor"] if self.options.supervise else names

    def up(self) -> UpResult:
        """Start everything (or report that it already runs). Raises PlatformError on failure.

        On a partly running platform (a crash, an interrupted `up`) only what is not running starts.
        """
        with _sigterm_as_interrupt(), state_lock(self.state_dir, wait=LOCK_WAIT):
            previous = read_state(self.state_dir)
            if previous is not None and any(c.root_alive() for c in previous.components):
                expected = previous.expected or [c.name for c in previous.components]
                missing = [n for n in expected if not _alive(previous, n)]
                if previous.complete and not missing:
                    return UpResult(previous, already_running=True)
                return UpResult(self._heal(previous, set(missing), migrate=True))
            self._t0 = time.monotonic()
            spec = self.spec
            remembered = {**read_ports(self.state_dir), **(previous.ports if previous else {})}
            keys = cfg.port_keys(spec, web=self._web_argv(spec) is not None)
            ports = resolve_ports(keys, self.options.ports, remembered)
            for directory in (self.layout.logs, self.layout.data, self.layout.gateway):
                directory.mkdir(parents=True, exist_ok=True)
            self.state_dir.chmod(0o755)  # the postgres OS user must traverse it when we run as root
            write_ports(self.state_dir, ports)
            secrets = load_secrets(self.state_dir, cfg.secret_names(spec))
            tls = ensure_tls(self.layout.tls)
            self.state = DevState(
                stack=spec.stack,
                state_dir=str(self.state_dir),
                ports=ports,
                reload=self.options.reload,
                started_at=time.time(),
                ca_cert=str(tls.ca_cert),
                scrape_interval=self.options.scrape_interval,
                expected=self.expected(spec),
            )
            write_state(self.state_dir, self.state)
            try:
                self._start_all(spec, ports, secrets, set(self.state.expected), migrate=True)
            except BaseException as exc:
                self._aborted.set()
                self._say("platform", "failed; stopping everything started so far")
                result = self._stop_all(self.state)
                if not result.survivors:
                    clear_state(self.state_dir)
                if isinstance(exc, PlatformError):
                    raise
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise PlatformError(f"platform dev up failed: {exc}", hint="see the logs folder") from exc
            self.state.complete = True
            write_state(self.state_dir, self.state)
            self._say("platform", f"all healthy in {time.monotonic() - self._t0:.1f}s")
            return UpResult(self.state)

    def _heal(self, previous: DevState, names: set[str], *, migrate: bool) -> DevState:
        """Start *names* (dead or never started) on the recorded ports; leave the rest running."""
        self._t0 = time.monotonic()
        self.state = previous
        self.options.scrape_interval = previous.scrape_interval
        spec = self.spec
        if names & {"rabbitmq", "epmd"}:  # one unit: a node cannot re-register with a new epmd
            names |= {"rabbitmq", "epmd"}
        doomed = sorted((c for c in previous.components if c.name in names), key=lambda c: -c.tier)
        for component in doomed:  # in stop order (a node before its epmd)
            self._say(
                component.name, "stopping what is left of it" if component.root_alive() else "not running"
            )
            stop_component(component)
            previous.components.remove(component)
            self._carry[component.name] = (component.restarts + 1, time.time())
        previous.complete = False
        write_state(self.state_dir, previous)
        secrets = load_secrets(self.state_dir, cfg.secret_names(spec))
        self._aborted.clear()
        self._start_all(spec, previous.ports, secrets, names, migrate=migrate)
        previous.complete = all(_alive(previous, n) for n in previous.expected)
        write_state(self.state_dir, previous)
        return previous

    def restart_component(self, name: str, *, migrate: bool = True) -> DevState:
        """Stop component *name* (if it runs) and start it again on its recorded ports.

        ``epmd`` and ``rabbitmq`` restart together. Raises UsageError for an unknown name and
        PlatformError when nothing runs or the start fails.
        """
        with state_lock(self.state_dir, wait=LOCK_WAIT):
            state = read_state(self.state_dir)
            if state is None or not state.components:
                raise PlatformError("the platform is not running", hint="run `platform dev up`")
            known = state.expected or [c.name for c in state.components]
            if name not in known:
                raise UsageError(f"no component called '{name}'", hint=f"known: {', '.join(known)}")
            return self._heal(state, {name}, migrate=migrate)

    def restart_dead(self, only: set[str] | None = None, *, migrate: bool = False) -> list[str]:
        """Restart the expected components (of *only*, if given) that are not running; return them.

        What the supervisor does after each backoff delay; `up` does the same for everything.
        """
        with state_lock(self.state_dir, wait=LOCK_WAIT):
            state = read_state(self.state_dir)
            if state is None or not state.components:
                return []
            dead = [n for n in state.expected if not _alive(state, n) and (only is None or n in only)]
            if dead:
                self._heal(state, set(dead), migrate=migrate)
            return dead

    def _start_all(
        self,
        spec: PlatformSpec,
        ports: dict[str, int],
        secrets: dict[str, str],
        names: set[str],
        *,
        migrate: bool,
    ) -> None:
        """One thread per component in *names*; a service starts as soon as the backends it needs
        are ready (backends not in *names* are taken as running). The supervisor starts last."""
        self._ready = {name: threading.Event() for name in BACKENDS}
        for backend in BACKENDS:
            if backend not in names:
                self._ready[backend].set()
        self._postgres_server: PostgresServer | None = None
        if "postgres" not in names:  # running already: a handle for psql only
            self._postgres_server = PostgresServer(
                self.layout.data, port=ports["postgres"], password=secrets["postgres"]
            )
        steps: dict[str, Callable[[], None]] = {
            "postgres": lambda: self._postgres(ports, secrets),
            "redis": lambda: self._redis(spec, ports, secrets),
            "rabbitmq": lambda: self._rabbitmq(spec, ports, secrets),
            "prometheus": lambda: self._prometheus(spec, ports),
            "alertmanager": lambda: self._alertmanager(spec, ports),
            "gateway": lambda: self._gateway(spec, ports),
        }
        for svc in spec.services:
            steps[svc.name] = lambda s=svc: self._service(spec, s, ports, secrets, migrate=migrate)
        if spec.web is not None and self._web_argv(spec) is not None:
            steps[spec.web.name] = lambda: self._web(spec, ports)
        self._parallel({n: step for n, step in steps.items() if n in names})
        if "supervisor" in names and self.options.supervise:
            self._supervisor()

    def _supervisor(self) -> None:
        """Spawn the detached supervisor (:mod:`infra.local.supervisor`) and record it."""
        log = self.layout.log("supervisor")
        process = ManagedProcess(
            "supervisor",
            [sys.executable, "-m", "infra.local.supervisor", "--state-dir", str(self.state_dir),
             "--root", str(self.root)],
            log_path=log, cwd=self.root, die_with_parent=False,
        )  # fmt: skip
        process.start()
        pid = process.pid
        assert pid is not None
        self._record(
            Component(
                name="supervisor", kind="supervisor", pid=pid, start_time=proc_starttime(pid) or 0,
                pids=dict(process.seen), stop_timeout=10.0, health="pid:", log=str(log),
                tier=TIER_SUPERVISOR,
            )
        )  # fmt: skip
        self._say("supervisor", f"watching every component (pid {pid}, log {log})")

    def _await_backend(self, name: str, timeout: float = BACKEND_TIMEOUT) -> None:
        """Block until backend *name* is ready; stop early when another step failed."""
        deadline = time.monotonic() + timeout
        while not self._ready[name].wait(0.1):
            if self._aborted.is_set():
                raise _AbortError
            if time.monotonic() > deadline:
                raise PlatformError(f"{name} was not ready within {timeout:g}s", hint="see the logs folder")

    def _parallel(self, steps: Mapping[str, Callable[[], None]]) -> None:
        """Run *steps* in daemon threads; re-raise the first failure after the others have wound up."""
        errors: list[BaseException] = []

        def run(name: str, step: Callable[[], None]) -> None:
            try:
                step()
            except _AbortError:
                pass
            except BaseException as exc:  # reported by the caller
                with self._lock:
                    errors.append(exc)
                self._abort_pending()

        threads = [
            threading.Thread(target=run, args=(n, s), name=f"dev-{n}", daemon=True) for n, s in steps.items()
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            self._abort_pending()
            for thread in threads:
                thread.join(ABORT_JOIN_TIMEOUT)
            raise
        if errors:
            raise errors[0]

    def _abort_pending(self) -> None:
        """Stop the other steps: kill servers still starting so their waits end at once."""
        self._aborted.set()
        with self._lock:
            pending = list(self._pending)
        for server in pending:
            with contextlib.suppress(Exception):  # best effort; `_stop_all` checks what is left
                server.kill()

    def _start(self, name: str, server: LocalServer, tier: int) -> None:
        """Start *server* (bounded by its own start timeout), recording each process as it spawns."""
        if self._aborted.is_set():
            raise _AbortError
        with self._lock:
            self._pending.append(server)
        server.die_with_parent = False  # components outlive `up` and the supervisor by design

        def spawned(role: str, process: ManagedProcess) -> None:
            label = name if role == "main" else role
            pid = process.pid
            assert pid is not None
            log = server.log_path if role == "main" else process.log_path
            self._record(
                Component(
                    name=label, kind=server.kind if role == "main" else role, pid=pid,
                    start_time=proc_starttime(pid) or 0, pids=dict(process.seen),
                    stop_signal=int(server.stop_signal) if role == "main" else int(signal.SIGTERM),
                    stop_timeout=server.stop_timeout if role == "main" else 5.0,
                    log=str(log), tier=tier if role == "main" else TIER_EPMD, ready=False,
                ),
                check_abort=False,
            )  # fmt: skip

        server.on_spawn = spawned
        self._say(name, "starting")
        try:
            server.start()
        except ServerError:
            if self._aborted.is_set():
                raise _AbortError from None
            raise
        finally:
            with self._lock:
                self._pending.remove(server)

    def _record(self, component: Component, *, check_abort: bool = True) -> None:
        """Add or replace *component* in the state file (so `down` can stop it), then stop early if
        aborted."""
        assert self.state is not None
        observe(component)
        with self._lock:
            old = self.state.component(component.name)
            if old is not None:
                component.pids = {**old.pids, **component.pids}
                component.restarts, component.last_restart = old.restarts, old.last_restart
                self.state.components.remove(old)
            elif component.name in self._carry:
                component.restarts, component.last_restart = self._carry[component.name]
            self.state.components.append(component)
            write_state(self.state_dir, self.state)
        if check_abort and self._aborted.is_set():
            raise _AbortError

    def _component(
        self,
        name: str,
        kind: str,
        server: LocalServer,
        tier: int,
        *,
        ports: dict[str, int],
        health: str,
        url: str | None = None,
        log: Path | None = None,
    ) -> Component:
        process = server._process
        if process is None or process.pid is None:
            raise PlatformError(f"{name} has no process to record", hint="report this bug")
        pid = process.pid
        return Component(
            name=name,
            kind=kind,
            pid=pid,
            start_time=proc_starttime(pid) or 0,
            pids={p: s for p, s in process.seen.items()},
            stop_signal=int(server.stop_signal),
            stop_timeout=server.stop_timeout,
            ports=ports,
            url=url,
            health=health,
            log=str(log or server.log_path),
            tier=tier,
        )

    def _link_log(self, name: str, target: Path) -> Path:
        """A symlink ``logs/<name>.log`` to a server's own log file (one file per component)."""
        link = self.layout.log(name)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
        return link

    def _postgres(self, ports: dict[str, int], secrets: dict[str, str]) -> None:
        server = PostgresServer(self.layout.data, port=ports["postgres"], password=secrets["postgres"])
        self._start("postgres", server, TIER_BACKEND)
        link = self._link_log("postgres", server.log_path)
        self._record(
            self._component(
                "postgres", "postgres", server, TIER_BACKEND,
                ports={"postgres": server.port}, health=f"tcp:{server.port}",
                url=f"postgresql://127.0.0.1:{server.port}", log=link,
            )
        )  # fmt: skip
        self._postgres_server = server
        self._say("postgres", f"ready on 127.0.0.1:{server.port}")
        self._ready["postgres"].set()

    def _database(
        self, spec: PlatformSpec, svc: ServiceSpec, ports: dict[str, int], secrets: dict[str, str]
    ) -> None:
        """Create the service's role + database (idempotent), then run its migrations."""
        self._await_backend("postgres")
        server = self._postgres_server
        assert server is not None
        db = svc.manifest.needs.postgres.database  # type: ignore[union-attr]
        with self._db_lock:  # concurrent CREATE DATABASE fails while template1 is in use
            server.create_database(db, db, secrets[f"postgres:{svc.name}"])
        self._migrate(spec, svc, ports, secrets)

    def _migrate(
        self, spec: PlatformSpec, svc: ServiceSpec, ports: dict[str, int], secrets: dict[str, str]
    ) -> None:
        ini = svc.path / "migrations" / "alembic.ini"
        if not ini.exists():
            raise PlatformError(
                f"{svc.name}: {ini} not found", hint="every service with needs.postgres has migrations/"
            )
        if self._aborted.is_set():
            raise _AbortError
        log = self.layout.log(f"{svc.name}-migrate")
        self._say(svc.name, "alembic upgrade head")
        env = child_env(CONTRACT_PREFIXES, self._service_env(spec, svc, ports, secrets))
        argv = [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"]
        with log.open("ab") as out:
            try:
                result = subprocess.run(
                    argv, env=env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, timeout=MIGRATION_TIMEOUT, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise ServerError(
                    f"{svc.name}: migrations did not finish within {MIGRATION_TIMEOUT:g}s",
                    hint=f"read {log}",
                    log_tail=log_tail([log]),
                ) from None
        if result.returncode != 0:
            raise ServerError(
                f"{svc.name}: alembic upgrade head failed with exit code {result.returncode}",
                hint=f"read {log}",
                log_tail=log_tail([log]),
            )

    def _service_env(
        self, spec: PlatformSpec, svc: ServiceSpec, ports: dict[str, int], secrets: dict[str, str]
    ) -> dict[str, str]:
        """The service's environment; its credentials go to files under ``secrets/<svc>/``."""
        directory = self.layout.secrets(svc.name)
        cfg.write_service_secrets(directory, cfg.service_secrets(spec, svc, secrets))
        return cfg.service_env(spec, svc, ports, directory)

    def _redis(self, spec: PlatformSpec, ports: dict[str, int], secrets: dict[str, str]) -> None:
        server = AclRedisServer(self.layout.data, spec, cfg.redis_passwords(secrets), port=ports["redis"])
        self._start("redis", server, TIER_BACKEND)
        link = self._link_log("redis", server.log_path)
        self._record(
            self._component(
                "redis", "redis", server, TIER_BACKEND, ports={"redis": server.port},
                health=f"tcp:{server.port}", url=f"redis://127.0.0.1:{server.port}", log=link,
            )
        )  # fmt: skip
        self._say("redis", f"ready on 127.0.0.1:{server.port}")
        self._ready["redis"].set()

    def _rabbitmq(self, spec: PlatformSpec, ports: dict[str, int], secrets: dict[str, str]) -> None:
        definitions = self.layout.data / "rabbitmq-definitions.json"
        definitions.write_text(json.dumps(cfg.rabbitmq_definitions(spec, secrets), indent=2))
        definitions.chmod(0o600)
        server = RabbitMqServer(
            self.layout.data,
            port=ports["rabbitmq"],
            dist_port=ports["rabbitmq_dist"],
            epmd_port=ports["rabbitmq_epmd"],
            prometheus_port=ports["rabbitmq_prometheus"],
            password=secrets["rabbitmq:admin"],
            plugins=(PROMETHEUS,),
            definitions=definitions,
            node_name=RABBITMQ_NODE,
            disk_free_limit=disk_free_limit_bytes(spec.config.rabbitmq.storage),
            start_timeout=60.0,
        )
        self._start("rabbitmq", server, TIER_BACKEND)
        epmd = server._epmd
        if epmd is not None and epmd.pid is not None:
            self._record(
                Component(
                    name="epmd", kind="epmd", pid=epmd.pid, start_time=proc_starttime(epmd.pid) or 0,
                    pids=dict(epmd.seen), stop_timeout=5.0, ports={"epmd": server.epmd_port},
                    health=f"tcp:{server.epmd_port}", log=str(server.dir / "epmd.log"), tier=TIER_EPMD,
                ),
                check_abort=False,
            )  # fmt: skip
        link = self._link_log("rabbitmq", server.log_path)
        self._record(
            self._component(
                "rabbitmq", "rabbitmq", server, TIER_BACKEND,
                ports={
                    "amqp": server.port,
                    "dist": server.dist_port,
                    "prometheus": ports["rabbitmq_prometheus"],
                },
                health=f"amqp:{server.port}", url=f"amqp://127.0.0.1:{server.port}/market", log=link,
            )
        )  # fmt: skip
        self._say("rabbitmq", f"ready on 127.0.0.1:{server.port} (definitions imported)")
        self._ready["rabbitmq"].set()

    def _http_component(
        self, server: LocalServer, tier: int, url: str, health: str, ports: dict[str, int]
    ) -> None:
        self._record(
            self._component(server.kind, server.kind, server, tier, ports=ports, health=health, url=url)
        )
        self._say(server.kind, f"ready on {url}")

    def _prometheus(self, spec: PlatformSpec, ports: dict[str, int]) -> None:
        port = ports["prometheus"]
        config = cfg.prometheus_config(spec, self.layout, ports, self.options.scrape_interval)
        server = PrometheusServer(
            self.layout.prometheus,
            port,
            config,
            cfg.alert_rules(spec),
            log_path=self.layout.log("prometheus"),
        )
        self._start("prometheus", server, TIER_MONITORING)
        url = f"http://127.0.0.1:{port}/"
        self._http_component(server, TIER_MONITORING, url, f"http://127.0.0.1:{port}/-/ready", {"http": port})

    def _alertmanager(self, spec: PlatformSpec, ports: dict[str, int]) -> None:
        port = ports["alertmanager"]
        self.layout.alertmanager.mkdir(parents=True, exist_ok=True)
        token = self.layout.alertmanager / "webhook-token"
        token.write_text("local\n")
        token.chmod(0o600)
        server = AlertmanagerServer(
            self.layout.alertmanager, port, cfg.alertmanager_config(spec, self.layout),
            log_path=self.layout.log("alertmanager"),
        )  # fmt: skip
        self._start("alertmanager", server, TIER_MONITORING)
        url = f"http://127.0.0.1:{port}/"
        self._http_component(server, TIER_MONITORING, url, f"http://127.0.0.1:{port}/-/ready", {"http": port})

    def _web_argv(self, spec: PlatformSpec) -> list[str] | None:
        """The web app's command line, or None (and a note, once) when it cannot run here yet."""
        if spec.web is None:
            return None
        if self._web_found is not None:
            return self._web_found[0]
        argv = web_argv(self.root, spec.web.path, reload=self.options.reload)
        self._web_found = (argv,)
        if argv is None:
            self._say(
                spec.web.name,
                "not started: no Node or no build (scripts/bootstrap.sh installs Node and builds "
                "frontend/; `npm --prefix frontend ci && npm --prefix frontend run build`)",
            )
        return argv

    def _web(self, spec: PlatformSpec, ports: dict[str, int]) -> None:
        """The web app (production server, or ``next dev`` with --reload), health-checked."""
        app = spec.web
        argv = self._web_argv(spec)
        assert app is not None
        assert argv is not None
        port = ports[cfg.service_port_key(app.name)]
        # next dev compiles pages on first request: allow it longer.
        timeout = max(self.options.service_timeout, 120.0 if self.options.reload else 0.0)
        server = NextServer(
            app.name, argv, self.layout.data / "web", port, app.manifest.health,
            cfg.web_env(spec, ports, dev=self.options.reload), log_path=self.layout.log(app.name),
            cwd=app.path, start_timeout=timeout,
        )  # fmt: skip
        self._start(app.name, server, TIER_SERVICE)
        url = f"http://127.0.0.1:{port}/"
        health = f"http://127.0.0.1:{port}{app.manifest.health}"
        self._record(self._component(app.name, "web", server, TIER_SERVICE, ports={"http": port},
                                     health=health, url=url))  # fmt: skip
        self._say(app.name, f"ready on {url} (through the gateway: /)")

    def _gateway(self, spec: PlatformSpec, ports: dict[str, int]) -> None:
        web_dev = self.options.reload
        addrs = cfg.gateway_addresses(spec, self.layout, ports, web_dev=web_dev)
        conf = cfg.nginx_conf(spec, self.layout, ports, web_dev=web_dev)
        server = NginxServer(self.layout.gateway, addrs, conf, log_path=self.layout.log("gateway"))
        self._start("gateway", server, TIER_GATEWAY)
        https, http = ports["gateway_https"], ports["gateway_http"]
        self._record(
            self._component(
                "gateway", "nginx", server, TIER_GATEWAY, ports={"https": https, "http": http},
                health=f"http://127.0.0.1:{http}/healthz", url=f"https://localhost:{https}/",
            )
        )  # fmt: skip
        self._say("gateway", f"ready on https://localhost:{https}/ (http {http})")

    def _service(
        self,
        spec: PlatformSpec,
        svc: ServiceSpec,
        ports: dict[str, int],
        secrets: dict[str, str],
        *,
        migrate: bool = True,
    ) -> None:
        needs = svc.manifest.needs
        if needs.postgres and migrate:
            self._database(spec, svc, ports, secrets)
        if needs.redis:
            self._await_backend("redis")
        if needs.rabbitmq:
            self._await_backend("rabbitmq")
        port = ports[cfg.service_port_key(svc.name)]
        reload_dirs = [svc.path, self.root / "libs" / "servicekit" / "servicekit"]
        server = UvicornService(
            svc.name, svc.manifest.package, self.layout.data / "services", port,
            self._service_env(spec, svc, ports, secrets), log_path=self.layout.log(svc.name),
            cwd=svc.path, reload=self.options.reload, reload_dirs=reload_dirs,
            start_timeout=self.options.service_timeout,
        )  # fmt: skip
        self._start(svc.name, server, TIER_SERVICE)
        url = f"http://127.0.0.1:{port}/"
        self._http_component(server, TIER_SERVICE, url, f"http://127.0.0.1:{port}/readyz", {"http": port})

    # ---------------------------------------------------------------- down / status / reset

    def _stop_all(self, state: DevState) -> DownResult:
        survivors: dict[str, list[int]] = {}
        stopped: list[str] = []
        for tier in sorted({c.tier for c in state.components}, reverse=True):
            group = [c for c in state.components if c.tier == tier]
            results: dict[str, list[int]] = {}
            threads = [threading.Thread(target=_stop_into, args=(c, results), daemon=True) for c in group]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for component in group:
                left = results.get(component.name, component.alive_pids())
                if left:
                    survivors[component.name] = left
                else:
                    stopped.append(component.name)
                    self._say(component.name, "stopped")
        return DownResult(stopped, survivors)

    def down(self) -> DownResult:
        """Stop the supervisor, then every recorded process by PID; return what stopped and survived.

        The ports stay remembered (``ports.json``) for the next `up`.
        """
        early = read_state(self.state_dir)
        supervisor = early.component("supervisor") if early else None
        if supervisor is not None:  # first, so nothing is restarted while we stop it (no lock: it
            stop_component(supervisor)  # may hold the lock for a restart, which it then abandons)
        with state_lock(self.state_dir, wait=LOCK_WAIT):
            state = read_state(self.state_dir)
            if state is None:
                return DownResult([], {})
            self._t0 = time.monotonic()
            result = self._stop_all(state)
            if result.survivors:
                write_state(self.state_dir, state)
            else:
                clear_state(self.state_dir)
            return result

    def status(self) -> list[dict[str, Any]]:
        """Each recorded component: pid, ports, url, running, healthy, log."""
        state = read_state(self.state_dir)
        if state is None:
            return []
        rows = []
        for component in state.components:
            running, healthy = component.root_alive(), probe(component)
            if healthy:
                condition = "healthy"
            elif not running:
                condition = "down"
            else:
                condition = "starting" if not component.ready else "unhealthy"
            rows.append(
                {
                    "name": component.name,
                    "kind": component.kind,
                    "pid": component.pid,
                    "ports": component.ports,
                    "url": component.url,
                    "running": running,
                    "healthy": healthy,
                    "state": condition,
                    "restarts": component.restarts,
                    "last_restart": component.last_restart,
                    "log": component.log,
                }
            )
        recorded = {c.name for c in state.components}
        for name in state.expected:  # an interrupted `up` never spawned these: not healthy
            if name not in recorded:
                rows.append(
                    {
                        "name": name, "kind": name, "pid": 0, "ports": {}, "url": None, "running": False,
                        "healthy": False, "state": "not started", "restarts": 0, "last_restart": None,
                        "log": None,
                    }
                )  # fmt: skip
        return rows

    def log_files(self) -> dict[str, Path]:
        """Component name -> log file (from the state, else whatever is in the logs folder)."""
        files = (
            {p.stem: p for p in sorted(self.layout.logs.glob("*.log"))} if self.layout.logs.exists() else {}
        )
        state = read_state(self.state_dir)
        for component in state.components if state else []:
            if component.log:
                files[component.name] = Path(component.log)
        return dict(sorted(files.items()))

    def reset(self) -> DownResult:
        """Stop everything, then delete data, logs, secrets and state (the local CA is kept)."""
        result = self.down()
        if result.survivors:
            raise PlatformError(
                f"processes survived the stop: {result.survivors}",
                hint="kill them by PID, then run reset again",
            )
        with state_lock(self.state_dir):
            for path in (self.layout.data, self.layout.logs, self.layout.gateway, self.state_dir / "secrets"):
                shutil.rmtree(path, ignore_errors=True)
            (self.state_dir / "secrets.json").unlink(missing_ok=True)
            (self.state_dir / "ports.json").unlink(missing_ok=True)
            clear_state(self.state_dir)
        return result


def _alive(state: DevState, name: str) -> bool:
    component = state.component(name)
    return component is not None and component.root_alive()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, SIGTERM unwinds like Ctrl-C (so an `up` being stopped cleans up)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_into(component: Component, results: dict[str, list[int]]) -> None:
    results[component.name] = stop_component(component)


def urls_table(state: DevState) -> list[tuple[str, str]]:
    """(name, URL) rows for people: gateway https/http, monitoring, each service direct, the CA file."""
    ports = state.ports
    rows = [
        ("gateway (https)", f"https://localhost:{ports['gateway_https']}/"),
        ("gateway (http)", f"http://localhost:{ports['gateway_http']}/  (redirects to https)"),
        ("prometheus", f"http://127.0.0.1:{ports['prometheus']}/"),
        ("alertmanager", f"http://127.0.0.1:{ports['alertmanager']}/"),
    ]
    for component in state.components:
        if component.kind == "web" and component.url:
            rows.insert(0, ("web app", f"https://localhost:{ports['gateway_https']}/"))
            rows.append((f"{component.name} (direct)", component.url))
        elif component.tier == TIER_SERVICE and component.url:
            rows.append((component.name, f"{component.url}docs"))
    rows += [
        ("postgres", f"postgresql://127.0.0.1:{ports['postgres']}"),
        ("redis", f"redis://127.0.0.1:{ports['redis']}"),
        ("rabbitmq", f"amqp://127.0.0.1:{ports['rabbitmq']}/market"),
        ("ca certificate", state.ca_cert or ""),
        ("logs", str(Path(state.state_dir) / "logs")),
    ]
    return rows
