"""`platform new-service` and `platform services list|remove`: thin over :mod:`infra.scaffold`.

Imports stay light (typer, pydantic, jinja2, ruamel): no pulumi on this path (bench/scaffold.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import context
from cli.help import CONTEXT, examples
from cli.output import info, result, result_json

services_app = typer.Typer(
    help="List and remove services.",
    invoke_without_command=True,
    context_settings=CONTEXT,
    rich_markup_mode="rich",
    epilog=examples("platform services list", "platform services remove orders-svc --delete"),
)


@services_app.callback()
def _services(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


EXIT_UNCHANGED = 0  # re-running with the same answers is a no-op, not an error


def _root() -> Path:
    return context.repo_root()


def _interactive(no_input: bool) -> bool:
    return not no_input and sys.stdin.isatty() and sys.stdout.isatty()


def _csv(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _known_events(root: Path) -> list[str]:
    """Events some service publishes (what a new service may consume)."""
    from infra.scaffold.registry import list_services

    return sorted({event for row in list_services(root) for event in row["publishes"]})


def _prompter(root: Path) -> Any:
    """Ask on the terminal (stderr); ``consumes`` offers the events some service publishes and asks
    again for an event nobody publishes. Validation of each answer is the template's (it asks again)."""
    known = _known_events(root)
    own: list[str] = []

    def ask(name: str, question: Any, default: Any) -> Any:
        if question.type == "bool":
            return typer.confirm(question.help, default=bool(default), err=True)
        shown = ", ".join(default) if isinstance(default, list) else default
        text = f"{question.help} [{name}]"
        if name == "consumes":
            info("known events: " + (", ".join(known) or "none yet") + " (comma-separated, or empty)")
        while True:
            answer = typer.prompt(text, default="" if shown is None else shown, show_default=True, err=True)
            if name == "publishes":
                own[:] = [e.strip() for e in str(answer).split(",") if e.strip()]
            if name != "consumes":
                return answer
            unknown = [
                e.strip() for e in str(answer).split(",") if e.strip() and e.strip() not in known + own
            ]
            if not unknown:
                return answer
            info(
                f"error: no service publishes {', '.join(unknown)}; choose from: {', '.join(known) or 'none'}"
            )

    return ask


def _recover(root: Path) -> None:
    from infra.scaffold.apply import recover

    for item in recover(root):
        info(item.line())


def new_service(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Service name (DNS-1035, e.g. orders-svc).")
    ] = None,
    route: Annotated[
        str | None, typer.Option(metavar="PATH", help="Gateway route prefix, e.g. /api/orders.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="One-line description.")] = None,
    resource: Annotated[
        str | None, typer.Option(metavar="NOUN", help="Example CRUD resource (plural), e.g. orders.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port the service listens on.", metavar="PORT")] = None,
    postgres: Annotated[
        bool | None, typer.Option("--postgres/--no-postgres", help="Own a PostgreSQL database.")
    ] = None,
    database: Annotated[
        str | None, typer.Option(metavar="NAME", help="Database name (with --postgres).")
    ] = None,
    redis: Annotated[bool | None, typer.Option("--redis/--no-redis", help="Cache reads in Redis.")] = None,
    redis_db: Annotated[int | None, typer.Option(metavar="0-15", help="Redis logical database.")] = None,
    publishes: Annotated[
        list[str] | None,
        typer.Option(
            metavar="EVENT,...", help="Events it publishes, e.g. order.created (comma list, repeatable)."
        ),
    ] = None,
    consumes: Annotated[
        list[str] | None,
        typer.Option(metavar="EVENT,...", help="Events it consumes; some service must publish each."),
    ] = None,
    stacks: Annotated[
        list[str] | None,
        typer.Option(
            "--stack",
            "-s",
            metavar="STACK,...",
            help="Stacks to register in (repeatable; default: all).",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str, typer.Option(metavar="NAME", help="Template under service_templates/.")
    ] = "fastapi",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Answer another template question (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (JSON) on stdout.")
    ] = False,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Never prompt (defaults for the rest).")
    ] = False,
    install: Annotated[
        bool,
        typer.Option(
            "--install/--no-install",
            help="Install the new package (editable) in the project environment (.venv)",
        ),
    ] = True,
) -> None:
    """Scaffold a FastAPI service from a template and register it in the stacks."""
    from infra.errors import PlatformError, UsageError
    from infra.scaffold.apply import apply_plan, locked
    from infra.scaffold.plan import build_plan

    given: dict[str, Any] = {
        key: value
        for key, value in {
            "name": name,
            "route": route,
            "description": description,
            "resource": resource,
            "port": port,
            "postgres": postgres,
            "database": database,
            "redis": redis,
            "redis_db": redis_db,
            "publishes": _csv(publishes),
            "consumes": _csv(consumes),
        }.items()
        if value is not None
    }
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set '{item}' is not KEY=VALUE", hint="e.g. --set owner=team-a")
        given[key.strip().replace("-", "_")] = value
    root = _root()
    prompter = _prompter(root) if _interactive(no_input) else None
    with locked(root):
        _recover(root)
        plan = build_plan(root, given, template=template, stacks=_csv(stacks), prompter=prompter)
        if plan.unchanged:
            _report(plan.to_json(), "unchanged", json_out)
            info(f"services/{plan.name} already exists (no changes)")
            raise typer.Exit(EXIT_UNCHANGED)
        if dry_run:
            _report(plan.to_json(), "dry-run", json_out)
            return
        try:
            regenerated = apply_plan(plan)
        except OSError as exc:
            raise PlatformError(
                f"could not create services/{plan.name}: {exc}",
                hint="fix the cause (disk space, permissions) and run it again; anything half-done is "
                "rolled back or finished by the next `platform services` command",
            ) from exc
    installed = _install(root, plan.name) if install else None
    data = {**plan.to_json(), "regenerated": regenerated}
    if installed is not None:
        data["install"] = installed.to_json()
    _report(data, "created", json_out)
    if not json_out:
        _next_steps(plan.name, installed)


def _install(root: Path, name: str) -> Any:
    from infra.scaffold.install import install_service, project_python

    if project_python(root) is not None:
        info(f"installing services/{name} in the project environment ...")
    return install_service(root, name)


def _next_steps(name: str, installed: Any) -> None:
    """What to run next (stderr: diagnostics, not the result), as copier and gh print."""
    if installed is not None and installed.action != "installed":
        why = f" ({installed.reason})" if installed.reason else ""
        info(f"warning: services/{name} is not installed{why}; install it with:\n  {installed.command}")
    elif installed is None:
        info(
            f"note: services/{name} was not installed (--no-install); before `platform dev up` run:\n"
            f"  .venv/bin/python -m pip install --no-deps --no-build-isolation -e services/{name}"
        )
    info(
        f"next: {context.command('check -s dev')} && {context.command('dev up')}\n"
        f"      .venv/bin/pytest services/{name} -q   # the service's own tests"
    )


def _report(data: dict[str, Any], status: str, json_out: bool) -> None:
    data = {**data, "status": status}
    if json_out:
        result_json(data)
        return
    if status == "unchanged":
        return
    lines = [
        f"{'plan for' if status == 'dry-run' else 'created'} service {data['service']} "
        f"(template {data['template']}):"
    ]
    lines += [f"  {f['action']:<9} {f['path']}" for f in data["files"]]
    for s in data["stacks"]:
        lines.append(
            f"  {s['action']:<9} {s['file']}: platform:services.{data['service']} {_flow(s['entry'])}"
        )
        if s.get("quota"):
            lines.append(
                f"  {'raise':<9} {s['file']}: platform:quota to {_flow(s['quota'])} (room for its rollout)"
            )
    lines += [f"  {'regenerate'} {rel}" for rel in data.get("regenerated", [])]
    if data.get("install", {}).get("action") == "installed":
        lines.append(f"  {'install':<9} services/{data['service']} (editable, {data['install']['python']})")
    if status == "dry-run":
        lines.append("dry run: nothing was written")
    result("\n".join(lines))


def _flow(entry: dict[str, Any]) -> str:
    parts = [f"{k}: {_flow(v) if isinstance(v, dict) else v}" for k, v in entry.items()]
    return "{" + ", ".join(parts) + "}"


@services_app.command("list", epilog=examples("platform services list", "platform services list --json"))
def list_cmd(
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (JSON) on stdout.")
    ] = False,
) -> None:
    """List services: route, needs, events, the stacks they are registered in."""
    from infra.scaffold.apply import locked
    from infra.scaffold.registry import format_table, list_services

    root = _root()
    with locked(root):
        _recover(root)
        rows = list_services(root)
    if json_out:
        result_json(rows)
    else:
        result(format_table(rows))


@services_app.command(
    "remove",
    epilog=examples(
        "platform services remove orders-svc            # unregister; keep services/orders-svc",
        "platform services remove orders-svc --delete   # and delete it (asks about uncommitted files)",
        "platform services remove orders-svc --delete --yes --dry-run",
    ),
)
def remove_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service to remove.")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Also delete services/<name> and uninstall its package.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (JSON) on stdout.")
    ] = False,
) -> None:
    """Unregister a service from every stack; with --delete also delete its folder and uninstall it."""
    from infra.errors import UsageError
    from infra.scaffold.apply import locked, remove_committed
    from infra.scaffold.install import distribution_name, uninstall_service
    from infra.scaffold.registry import plan_removal, uncommitted_files, validate_removal

    root = _root()
    with locked(root):
        _recover(root)
        plan = plan_removal(root, name)
        delete = delete and plan.folder_exists
        validate_removal(plan, delete)
        data = plan.to_json(delete)
        dirty = uncommitted_files(root, name) if delete else []
        data["uncommitted"] = dirty
        if dirty and not dry_run and not yes:
            listed = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            if not _interactive(False):
                raise UsageError(
                    f"services/{name} has {len(dirty)} uncommitted file(s) --delete would lose: {listed}",
                    hint="commit or copy them first, or pass --yes to delete them anyway",
                )
            info(f"warning: services/{name} has {len(dirty)} uncommitted file(s): {listed}")
            if not typer.confirm(f"delete services/{name} with them?", default=False, err=True):
                info("nothing was changed")
                raise typer.Exit(1)
        dist = distribution_name(root / "services" / name)
        if not dry_run:
            data["regenerated"] = remove_committed(root, name, plan.changes, delete)
    data["status"] = "dry-run" if dry_run else "removed"
    if delete and not dry_run:
        data["uninstall"] = uninstall_service(root, name, dist).to_json()
    if json_out:
        result_json(data)
        return
    lines = [f"{'plan: remove' if dry_run else 'removed'} service {name}:"]
    for s in data["stacks"]:
        lines.append(f"  unregister {s['file']}")
        if s.get("quota"):
            lines.append(f"  lower      {s['file']}: platform:quota to {_flow(s['quota'])}")
    if not data["stacks"]:
        lines.append("  (not registered in any stack)")
    if data["delete_folder"]:
        extra = f" ({len(dirty)} uncommitted file(s))" if dirty else ""
        lines.append(f"  delete     {data['folder']}{extra}")
    elif plan.folder_exists:
        lines.append(f"  keep       {data['folder']} (pass --delete to delete it)")
    lines += [f"  regenerate {rel}" for rel in data.get("regenerated", [])]
    undo = data.get("uninstall")
    if undo and undo["action"] == "uninstalled":
        lines.append(f"  uninstall  {name} (from {undo['python']})")
    elif undo:
        info(f"warning: {name} was not uninstalled ({undo['reason']}); if installed, run: {undo['command']}")
    if dry_run:
        lines.append("dry run: nothing was written")
    result("\n".join(lines))


def regenerate_cmd(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when an artifact is out of date")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Rewrite every committed generated artifact from the spec: compose.yaml, compose/*, .env.example,
    docs/spec.md, docs/gateway.md, docs/events.md (new-service and services remove do it themselves)."""
    from infra.errors import PlatformError
    from infra.scaffold.apply import locked
    from infra.scaffold.generated import changed, regenerate, render_generated

    root = _root()
    with locked(root):
        _recover(root)
        paths = sorted(changed(root, render_generated(root, root))) if check else regenerate(root)
    if json_out:
        result_json({"stale" if check else "regenerated": paths})
    elif paths:
        result("\n".join(f"{'stale' if check else 'regenerated'}  {rel}" for rel in paths))
    else:
        info("every generated artifact is up to date")
    if check and paths:
        raise PlatformError(
            f"{len(paths)} generated artifact(s) out of date", hint="run `platform regenerate` and commit"
        )


def register(app: typer.Typer) -> None:
    """Attach `new-service`, `regenerate` (top level) and the `services` sub-app."""
    app.command(
        "new-service",
        epilog=examples(
            "platform new-service                  # asks each question on a terminal",
            "platform new-service inventory-svc --route /api/inventory --postgres --publishes stock.changed",
            "platform new-service search-svc --no-postgres --redis --consumes listing.created --no-input",
            "platform new-service orders-svc --dry-run --json",
        ),
    )(new_service)
    app.command("regenerate", epilog=examples("platform regenerate", "platform regenerate --check"))(
        regenerate_cmd
    )
    app.add_typer(services_app, name="services")
