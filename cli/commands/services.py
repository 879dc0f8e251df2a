"""`platform new-service` and `platform services list|remove`: thin over :mod:`infra.scaffold`.

Imports stay light (typer, pydantic, jinja2, ruamel): no pulumi on this path (bench/scaffold.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.output import info, result, result_json

services_app = typer.Typer(help="List and remove services.", no_args_is_help=True)

EXIT_UNCHANGED = 0  # re-running with the same answers is a no-op, not an error


def _root() -> Path:
    from infra.repo import find_root

    return find_root()


def _interactive(no_input: bool) -> bool:
    return not no_input and sys.stdin.isatty() and sys.stdout.isatty()


def _csv(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _prompt(name: str, question: Any, default: Any) -> Any:
    if question.type == "bool":
        return typer.confirm(question.help, default=bool(default), err=True)
    shown = ", ".join(default) if isinstance(default, list) else default
    return typer.prompt(
        f"{question.help} [{name}]", default="" if shown is None else shown, show_default=True, err=True
    )


def _recover(root: Path) -> None:
    from infra.scaffold.apply import recover

    for item in recover(root):
        info(item.line())


def new_service(
    name: Annotated[str | None, typer.Argument(help="Service name (DNS-1035, e.g. orders-svc)")] = None,
    route: Annotated[str | None, typer.Option(help="Gateway route prefix, e.g. /api/orders")] = None,
    description: Annotated[str | None, typer.Option(help="One-line description")] = None,
    resource: Annotated[str | None, typer.Option(help="Example CRUD resource (plural), e.g. orders")] = None,
    port: Annotated[int | None, typer.Option(help="Port the service listens on")] = None,
    postgres: Annotated[bool | None, typer.Option("--postgres/--no-postgres", help="Own a database")] = None,
    database: Annotated[str | None, typer.Option(help="Database name (with --postgres)")] = None,
    redis: Annotated[bool | None, typer.Option("--redis/--no-redis", help="Cache reads in Redis")] = None,
    redis_db: Annotated[int | None, typer.Option(help="Redis logical database 0-15")] = None,
    publishes: Annotated[list[str] | None, typer.Option(help="Events it publishes (comma list)")] = None,
    consumes: Annotated[list[str] | None, typer.Option(help="Events it consumes (comma list)")] = None,
    stacks: Annotated[list[str] | None, typer.Option(help="Stacks to register in (default: all)")] = None,
    template: Annotated[str, typer.Option(help="Template under service_templates/")] = "fastapi",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE for other template questions")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Never prompt (defaults for the rest)")
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
    prompter = _prompt if _interactive(no_input) else None
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
        f"next: platform check -s dev && platform dev up\n"
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
    lines += [
        f"  {s['action']:<9} {s['file']}: platform:services.{data['service']} {_flow(s['entry'])}"
        for s in data["stacks"]
    ]
    lines += [f"  {'regenerate':<9} {rel}" for rel in data.get("regenerated", [])]
    if data.get("install", {}).get("action") == "installed":
        lines.append(f"  {'install':<9} services/{data['service']} (editable, {data['install']['python']})")
    if status == "dry-run":
        lines.append("dry run: nothing was written")
    result("\n".join(lines))


def _flow(entry: dict[str, Any]) -> str:
    parts = [f"{k}: {_flow(v) if isinstance(v, dict) else v}" for k, v in entry.items()]
    return "{" + ", ".join(parts) + "}"


@services_app.command("list")
def list_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
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


@services_app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="Service to remove")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Also delete services/<name> without asking")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Unregister a service from every stack; delete its folder with --yes (or when confirmed)."""
    from infra.scaffold.apply import locked, remove_committed
    from infra.scaffold.install import distribution_name, uninstall_service
    from infra.scaffold.registry import plan_removal, validate_removal

    root = _root()
    with locked(root):
        _recover(root)
        plan = plan_removal(root, name)
        delete = plan.folder_exists and (
            yes
            or (
                not dry_run
                and _interactive(False)
                and typer.confirm(f"delete services/{name} too?", default=False, err=True)
            )
        )
        validate_removal(plan, delete)
        data = plan.to_json(delete)
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
    lines += [f"  unregister {s['file']}" for s in data["stacks"]] or ["  (not registered in any stack)"]
    if data["delete_folder"]:
        lines.append(f"  delete     {data['folder']}")
    elif plan.folder_exists:
        lines.append(f"  keep       {data['folder']} (pass --yes to delete it)")
    lines += [f"  regenerate {rel}" for rel in data.get("regenerated", [])]
    undo = data.get("uninstall")
    if undo and undo["action"] == "uninstalled":
        lines.append(f"  uninstall  {name} (from {undo['python']})")
    elif undo:
        info(f"warning: {name} could not be uninstalled ({undo['reason']}); run: {undo['command']}")
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
    app.command("new-service")(new_service)
    app.command("regenerate")(regenerate_cmd)
    app.add_typer(services_app, name="services")
