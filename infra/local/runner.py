"""`platform dev`: the whole platform as native processes on one machine.

``DevRunner(options).up()`` starts, on loopback ports, PostgreSQL (a database + role per service,
migrations run), Redis (rendered ACL), RabbitMQ (own node + epmd, rendered definitions), Prometheus
and Alertmanager (rendered configs and rules), the NGINX gateway (rendered config, TLS from a local
CA) and every service under uvicorn, then waits until each is healthy. Every step has a bounded
timeout; on any failure everything started so far is stopped and the error carries the log tail.
``down()`` stops everything by PID (from the state file) and reports survivors.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
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
from infra.local.process import ServerError, log_tail, proc_starttime
from infra.local.rabbitmq_server import PROMETHEUS, RabbitMqServer, amqp_handshake
from infra.local.server import LocalServer, child_env
from infra.local.state import (
    Component,
    DevState,
    clear_state,
    load_secrets,
    observe,
    read_state,
    state_lock,
    stop_component,
    write_state,
)
from infra.local.tls import ensure_tls
from infra.local.uvicorn_service import UvicornService
from infra.local.web_app import NextServer, web_argv
from infra.spec import REPO_ROOT, PlatformSpec, ServiceSpec, load_spec

DEFAULT_STATE_DIR = REPO_ROOT / ".platform" / "dev"
#: Stop order: higher tiers first (the gateway before services before backends before epmd).
TIER_GATEWAY, TIER_SERVICE, TIER_MONITORING, TIER_BACKEND, TIER_EPMD = 4, 3, 2, 1, 0
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
    """Is the component healthy now? (HTTP 200, a TCP connect, or an AMQP handshake)."""
    if not component.root_alive() or not component.health:
        return False
    kind, _, target = component.health.partition(":")
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

    @property
    def spec(self) -> PlatformSpec:
        """The spec, loaded at first use (``up`` reads it at boot, from the repo's files)."""
        if self._spec is None:
            self._spec = load_spec(self.options.stack, self.root)
        return self._spec

    def _say(self, name: str, message: str) -> None:
        self.options.progress(f"[{time.monotonic() - self._t0:5.1f}s] {name:<18} {message}")

    # ---------------------------------------------------------------- up

    def up(self) -> UpResult:
        """Start everything (or report that it already runs). Raises PlatformError on failure."""
        with state_lock(self.state_dir):
            previous = read_state(self.state_dir)
            if previous is not None:
                alive = [c for c in previous.components if c.root_alive()]
                dead = [c.name for c in previous.components if not c.root_alive()]
                if alive and previous.complete and not dead:
                    return UpResult(previous, already_running=True)
                if alive:
                    raise PlatformError(
                        f"the platform in {self.state_dir} is partly running "
                        f"(not running: {', '.join(dead)})",
                        hint="run `platform dev down`, then `platform dev up` again",
                    )
            self._t0 = time.monotonic()
            spec = self.spec
            self._web_argv = self._web_command(spec)
            keys = cfg.port_keys(spec, web=self._web_argv is not None)
            ports = resolve_ports(keys, self.options.ports, previous.ports if previous else {})
            for directory in (self.layout.logs, self.layout.data, self.layout.gateway):
                directory.mkdir(parents=True, exist_ok=True)
            self.state_dir.chmod(0o755)  # the postgres OS user must traverse it when we run as root
            secrets = load_secrets(self.state_dir, cfg.secret_names(spec))
            tls = ensure_tls(self.layout.tls)
            self.state = DevState(
                stack=spec.stack,
                state_dir=str(self.state_dir),
                ports=ports,
                reload=self.options.reload,
                started_at=time.time(),
                ca_cert=str(tls.ca_cert),
            )
            write_state(self.state_dir, self.state)
            try:
                self._start_all(spec, ports, secrets)
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

    def _start_all(self, spec: PlatformSpec, ports: dict[str, int], secrets: dict[str, str]) -> None:
        """One thread per component; a service starts as soon as the backends it needs are ready."""
        self._ready = {name: threading.Event() for name in ("postgres", "redis", "rabbitmq")}
        self._postgres_server: PostgresServer | None = None
        steps: dict[str, Callable[[], None]] = {
            "postgres": lambda: self._postgres(ports, secrets),
            "redis": lambda: self._redis(spec, ports, secrets),
            "rabbitmq": lambda: self._rabbitmq(spec, ports, secrets),
            "prometheus": lambda: self._prometheus(spec, ports),
            "alertmanager": lambda: self._alertmanager(spec, ports),
            "gateway": lambda: self._gateway(spec, ports),
        }
        for svc in spec.services:
            steps[svc.name] = lambda s=svc: self._service(spec, s, ports, secrets)
        if spec.web is not None and self._web_argv is not None:
            steps[spec.web.name] = lambda: self._web(spec, ports)
        self._parallel(steps)

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

    def _start(self, name: str, server: LocalServer) -> None:
        """Start *server* (bounded by its own start timeout) and record it."""
        if self._aborted.is_set():
            raise _AbortError
        with self._lock:
            self._pending.append(server)
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
        """Add *component* to the state file (so `down` can stop it), then stop early if aborted."""
        assert self.state is not None
        observe(component)
        with self._lock:
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
        self._start("postgres", server)
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
        self._start("redis", server)
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
            start_timeout=60.0,
        )
        try:
            self._start("rabbitmq", server)
        finally:
            epmd = server._epmd
            if epmd is not None and epmd.pid is not None and epmd.running():
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
        self._start("prometheus", server)
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
        self._start("alertmanager", server)
        url = f"http://127.0.0.1:{port}/"
        self._http_component(server, TIER_MONITORING, url, f"http://127.0.0.1:{port}/-/ready", {"http": port})

    def _web_command(self, spec: PlatformSpec) -> list[str] | None:
        """The web app's command line, or None (and a note) when it cannot run here yet."""
        if spec.web is None:
            return None
        argv = web_argv(self.root, spec.web.path, reload=self.options.reload)
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
        assert app is not None
        assert self._web_argv is not None
        port = ports[cfg.service_port_key(app.name)]
        # next dev compiles pages on first request: allow it longer.
        timeout = max(self.options.service_timeout, 120.0 if self.options.reload else 0.0)
        server = NextServer(
            app.name, self._web_argv, self.layout.data / "web", port, app.manifest.health,
            cfg.web_env(spec, ports, dev=self.options.reload), log_path=self.layout.log(app.name),
            cwd=app.path, start_timeout=timeout,
        )  # fmt: skip
        self._start(app.name, server)
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
        self._start("gateway", server)
        https, http = ports["gateway_https"], ports["gateway_http"]
        self._record(
            self._component(
                "gateway", "nginx", server, TIER_GATEWAY, ports={"https": https, "http": http},
                health=f"http://127.0.0.1:{http}/healthz", url=f"https://localhost:{https}/",
            )
        )  # fmt: skip
        self._say("gateway", f"ready on https://localhost:{https}/ (http {http})")

    def _service(
        self, spec: PlatformSpec, svc: ServiceSpec, ports: dict[str, int], secrets: dict[str, str]
    ) -> None:
        needs = svc.manifest.needs
        if needs.postgres:
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
        self._start(svc.name, server)
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
        """Stop every recorded process by PID; return what stopped and what survived."""
        with state_lock(self.state_dir):
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
            rows.append(
                {
                    "name": component.name,
                    "kind": component.kind,
                    "pid": component.pid,
                    "ports": component.ports,
                    "url": component.url,
                    "running": component.root_alive(),
                    "healthy": probe(component),
                    "log": component.log,
                }
            )
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
            clear_state(self.state_dir)
        return result


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
