"""`platform dev up|down|status|logs|reset` (the native local platform) and `platform compose`.

Heavy modules (the runner, renderers, httpx) are imported inside the commands to keep --help fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import context
from cli.commands.stack import DEFAULT_STACK, JsonOption, StackOption
from cli.help import CONTEXT, examples
from cli.output import info, result, result_json
from infra.errors import PlatformError, UsageError

if TYPE_CHECKING:
    from infra.local.state import DevState

dev_app = typer.Typer(
    name="dev",
    help="Run the whole platform natively on this machine (PostgreSQL, Redis, RabbitMQ, gateway, services).",
    invoke_without_command=True,
    context_settings=CONTEXT,
    rich_markup_mode="rich",
    epilog=examples(
        "platform dev up", "platform dev status", "platform dev logs marketplace-svc -f", "platform dev down"
    ),
)


@dev_app.callback()
def _dev(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="State, logs and data of this local platform (default: .platform/dev in the checkout).",
        show_default=False,
    ),
]
PortOpt = Annotated[int | None, typer.Option(min=1, max=65535, show_default=False, metavar="PORT")]


def _state_dir(root: Path, state_dir: Path | None) -> Path:
    if state_dir is None:
        return root / ".platform" / "dev"
    context.remember("dev", "--state-dir", str(state_dir))
    return state_dir.resolve()


def _runner(state_dir: Path | None, **kwargs: object):
    from infra.local.runner import DevOptions, DevRunner

    root = context.repo_root()
    options = DevOptions(state_dir=_state_dir(root, state_dir), progress=info, **kwargs)  # type: ignore[arg-type]
    return DevRunner(options, root=root)


def _where(runner: object) -> None:
    """Say which checkout and which local platform a command acts on (stderr)."""
    info(f"repository: {runner.root}")
    info(f"state:      {runner.state_dir}")


def _service_ports(values: list[str]) -> dict[str, int]:
    ports = {}
    for value in values:
        name, sep, port = value.partition("=")
        if not sep or not port.isdigit():
            raise UsageError(
                f"--service-port '{value}' is not NAME=PORT", hint="e.g. --service-port auth-svc=8101"
            )
        ports[f"service:{name}"] = int(port)
    return ports


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


@dev_app.command(
    "up",
    epilog=examples(
        "platform dev up",
        "platform dev up --reload --gateway-port 8443",
        "platform dev up -s staging --state-dir /tmp/staging-like",
        "platform dev up --service-port auth-svc=8101 --json",
    ),
)
def up(
    ctx: typer.Context,
    state_dir: StateDir = None,
    stack: StackOption = DEFAULT_STACK,
    reload: Annotated[bool, typer.Option("--reload", help="Hot reload services on code changes.")] = False,
    gateway_port: PortOpt = None,
    gateway_http_port: PortOpt = None,
    prometheus_port: PortOpt = None,
    alertmanager_port: PortOpt = None,
    postgres_port: PortOpt = None,
    redis_port: PortOpt = None,
    rabbitmq_port: PortOpt = None,
    service_port: Annotated[
        list[str] | None,
        typer.Option(help="A service's port (repeatable).", show_default=False, metavar="NAME=PORT..."),
    ] = None,
    scrape_interval: Annotated[
        str | None,
        typer.Option(help="Override the stack's Prometheus scrape interval, e.g. 2s.", metavar="DURATION"),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Start everything, wait until healthy, print the URLs. Does nothing if it already runs."""
    from infra.local.process import ServerError
    from infra.local.runner import urls_table

    fixed = {
        "gateway_https": gateway_port,
        "gateway_http": gateway_http_port,
        "prometheus": prometheus_port,
        "alertmanager": alertmanager_port,
        "postgres": postgres_port,
        "redis": redis_port,
        "rabbitmq": rabbitmq_port,
    }
    ports = {k: v for k, v in fixed.items() if v is not None} | _service_ports(service_port or [])
    runner = _runner(state_dir, stack=stack, ports=ports, reload=reload, scrape_interval=scrape_interval)
    _where(runner)
    given = {name for name in ("stack", "reload", "scrape_interval") if _given(ctx, name)}
    running = _running_state(runner.state_dir)
    if running is not None:
        _refuse_changed_flags(running, stack, reload, scrape_interval, ports, given)
    else:
        _refuse_busy_ports(ports)
    _check_installed(stack, runner.root)
    try:
        outcome = runner.up()
    except ServerError as exc:
        if exc.log_tail:
            info(exc.log_tail)
        raise
    if outcome.already_running:
        info(f"the platform is already running from {outcome.state.state_dir}; nothing changed")
    if json_out:
        result_json(outcome.state.model_dump())
        return
    result(_table(urls_table(outcome.state)))
    ca, https = outcome.state.ca_cert, outcome.state.ports["gateway_https"]
    info(f"try: curl --cacert {ca} https://localhost:{https}/api/marketplace/listings")


PORT_FLAGS = {
    "gateway_https": "--gateway-port",
    "gateway_http": "--gateway-http-port",
    "prometheus": "--prometheus-port",
    "alertmanager": "--alertmanager-port",
    "postgres": "--postgres-port",
    "redis": "--redis-port",
    "rabbitmq": "--rabbitmq-port",
}


def _port_flag(key: str, port: int) -> str:
    if key.startswith("service:"):
        return f"--service-port {key.removeprefix('service:')}={port}"
    return f"{PORT_FLAGS.get(key, key)} {port}"


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed the option (or set its environment variable), not its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _running_state(state_dir: Path) -> DevState | None:
    from infra.local.state import read_state

    state = read_state(state_dir)
    if state is None or not any(c.root_alive() for c in state.components):
        return None
    return state


def _refuse_changed_flags(
    running: DevState,
    stack: str,
    reload: bool,
    scrape_interval: str | None,
    ports: dict[str, int],
    given: set[str],
) -> None:
    """`up` on a running platform does not silently ignore flags that differ from what runs."""
    changes: list[tuple[str, str]] = []
    if "stack" in given and stack != running.stack:
        changes.append((f"-s {stack}", f"it runs stack {running.stack}"))
    if "reload" in given and reload != running.reload:
        changes.append(("--reload", "it runs without hot reload"))
    if "scrape_interval" in given and scrape_interval != running.scrape_interval:
        was = running.scrape_interval or "the stack's"
        changes.append((f"--scrape-interval {scrape_interval}", f"it scrapes every {was}"))
    for key, port in sorted(ports.items()):
        now = running.ports.get(key)
        if now != port:
            changes.append((_port_flag(key, port), f"it uses {now}" if now else "no such port runs"))
    if not changes:
        return
    flags = " ".join(flag for flag, _ in changes)
    raise UsageError(
        "the platform is already running with other settings: "
        + "; ".join(f"{flag} ({why})" for flag, why in changes),
        hint=f"restart it with them: `platform dev down && platform dev up {flags}`, "
        "or drop the flags to use the running platform",
    )


def _refuse_busy_ports(ports: dict[str, int]) -> None:
    """Report every pinned port another program holds before anything starts."""
    import socket

    from infra.local.dev_config import HOST

    busy = []
    for key, port in sorted(ports.items()):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                busy.append(_port_flag(key, port))
    if busy:
        raise UsageError(
            f"port(s) already in use by another program: {', '.join(busy)}",
            hint="stop what listens there (ss -ltnp shows it), or pin other ports; nothing was started",
        )


def _check_installed(stack: str, root: Path) -> None:
    """Refuse to start anything when a service's package is not importable from its folder."""
    import shlex

    from infra.scaffold.install import install_command, not_installed, project_python
    from infra.spec import load_spec

    spec = load_spec(stack, root)
    problems = not_installed([(svc.name, svc.path) for svc in spec.services])
    if not problems:
        return
    python = project_python(root)
    commands = [shlex.join(install_command(root, name, python)) for name in sorted(problems)]
    raise PlatformError(
        "service package(s) not installed in this environment: "
        + "; ".join(f"{name} ({why})" for name, why in sorted(problems.items())),
        hint="install them, then run `platform dev up` again: " + " && ".join(commands),
    )


@dev_app.command(
    "restart",
    epilog=examples(
        "platform dev restart marketplace-svc",
        "platform dev restart rabbitmq   # epmd restarts with it",
        "platform dev restart gateway --json",
    ),
)
def restart(
    component: Annotated[
        str, typer.Argument(metavar="COMPONENT", help="A component `platform dev status` lists.")
    ],
    state_dir: StateDir = None,
    json_out: JsonOption = False,
) -> None:
    """Stop one component of the running platform and start it again on its ports (services migrate)."""
    runner = _runner(state_dir)
    _where(runner)
    state = runner.restart_component(component)
    if json_out:
        result_json(state.model_dump())
        return
    item = state.component(component)
    if item is None:
        raise PlatformError(
            f"{component} did not come back", hint="see `platform dev logs " + component + "`"
        )
    ports = ",".join(f"{k}={v}" for k, v in item.ports.items())
    result(f"restarted {component}: pid {item.pid} {ports}".rstrip())


@dev_app.command("down", epilog=examples("platform dev down", "platform dev down --state-dir /tmp/other"))
def down(state_dir: StateDir = None, json_out: JsonOption = False) -> None:
    """Stop every process `up` started (by PID, epmd included) and verify none remains."""
    outcome = _runner(state_dir).down()
    if outcome.survivors:
        raise PlatformError(
            "processes survived: "
            + "; ".join(f"{name}: {', '.join(map(str, pids))}" for name, pids in outcome.survivors.items()),
            hint="kill them by PID (kill -9 <pid>), then run `platform dev down` again",
        )
    if json_out:
        result_json({"stopped": outcome.stopped})
        return
    result("stopped: " + (", ".join(outcome.stopped) if outcome.stopped else "nothing was running"))


@dev_app.command("status", epilog=examples("platform dev status", "platform dev status --json"))
def status(state_dir: StateDir = None, json_out: JsonOption = False) -> None:
    """Each component: pid, port(s), running, healthy. Exit 1 if any is unhealthy."""
    runner = _runner(state_dir)
    _where(runner)
    rows = runner.status()
    if json_out:
        result_json({"components": rows})
    elif not rows:
        result("not running")
    else:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            ports = ",".join(f"{k}={v}" for k, v in r["ports"].items())
            state = "healthy" if r["healthy"] else ("UNHEALTHY" if r["running"] else "DOWN")
            result(f"{r['name']:<{width}}  pid {r['pid']:<7} {state:<9} {ports}")
    if rows and not all(r["healthy"] for r in rows):
        raise typer.Exit(1)


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


@dev_app.command(
    "logs",
    epilog=examples(
        "platform dev logs", "platform dev logs marketplace-svc -f", "platform dev logs gateway -n 200"
    ),
)
def logs(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="COMPONENT", help="Component (e.g. marketplace-svc, gateway); all if omitted."
        ),
    ] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines.")] = False,
    lines: Annotated[
        int, typer.Option("-n", "--lines", min=0, help="Lines of each log to print first.")
    ] = 50,
    state_dir: StateDir = None,
) -> None:
    """Print the last lines of a component's log (or of every log, prefixed), optionally following."""
    files = _runner(state_dir).log_files()
    if name is not None:
        if name not in files:
            raise UsageError(
                f"no log for '{name}'", hint=f"known: {', '.join(files) or 'none (not started yet)'}"
            )
        files = {name: files[name]}
    prefix = name is None
    for key, path in files.items():
        for line in _tail(path, lines):
            result(f"{key}: {line}" if prefix else line)
    if not follow:
        return
    offsets = {key: (path.stat().st_size if path.exists() else 0) for key, path in files.items()}
    try:
        while True:
            for key, path in files.items():
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if size < offsets[key]:
                    offsets[key] = 0  # truncated (reset)
                if size > offsets[key]:
                    with path.open("rb") as handle:
                        handle.seek(offsets[key])
                        chunk = handle.read(size - offsets[key]).decode(errors="replace")
                    offsets[key] = size
                    for line in chunk.splitlines():
                        result(f"{key}: {line}" if prefix else line)
                    sys.stdout.flush()
            time.sleep(0.3)
    except KeyboardInterrupt:
        return


@dev_app.command("reset", epilog=examples("platform dev reset", "platform dev reset --yes"))
def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    state_dir: StateDir = None,
) -> None:
    """Stop everything and wipe data, logs, secrets and state (the local CA is kept)."""
    runner = _runner(state_dir)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"reset deletes all local data under {runner.state_dir}", hint="pass --yes to confirm"
            )
        if not typer.confirm(f"Delete all local data under {runner.state_dir}?", err=True):
            info("nothing was deleted")
            raise typer.Exit(1)
    runner.reset()
    result(f"reset: data, logs and secrets under {runner.state_dir} deleted")


def compose(
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write the result here instead of stdout (plus compose/ and .env.example next to it).",
        ),
    ] = None,
    stack: StackOption = DEFAULT_STACK,
) -> None:
    """Render a docker compose file (every service + postgres/redis/rabbitmq/nginx/prometheus)."""
    from infra.render.compose import generated_files, render_compose_yaml, render_env_example
    from infra.spec import load_spec

    spec = load_spec(stack, context.repo_root())
    text = render_compose_yaml(spec)
    if output is None:
        sys.stdout.write(text)
        return
    base = output.parent
    files = {output: text, base / ".env.example": render_env_example(spec)}
    files |= {base / rel: body for rel, body in generated_files(spec).items()}
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    (base / "compose" / "postgres-init.sh").chmod(0o755)
    info(f"wrote {output}, {base / '.env.example'} and {base / 'compose'}/")


def register(app: typer.Typer) -> None:
    """Attach `dev` and `compose` to the top-level app."""
    app.add_typer(dev_app, name="dev")
    app.command(
        "compose",
        epilog=examples(
            "platform compose > compose.yaml",
            "platform compose -o compose.yaml",
            "platform compose -s staging -o /tmp/c/compose.yaml",
        ),
    )(compose)
