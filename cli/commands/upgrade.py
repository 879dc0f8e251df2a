"""`platform upgrade-service`: bring template changes into generated services (three-way merge).

Thin over :mod:`infra.scaffold.upgrade` (plan) and :func:`infra.scaffold.apply.apply_upgrade` (write).
Exit codes: 0 clean (or already up to date), 1 conflicts remain, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli import context
from cli.help import examples
from cli.output import info, result, result_json

EXIT_CONFLICTS = 1


def upgrade_service(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Service to upgrade (or --all).", show_default=False)
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="REV", help="Template revision: commit, branch or tag (default: working tree)."
        ),
    ] = None,
    answer: Annotated[
        list[str] | None,
        typer.Option("--answer", metavar="KEY=VALUE", help="Change a recorded answer (repeatable)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Upgrade every generated service.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (JSON) on stdout.")
    ] = False,
    install: Annotated[
        bool,
        typer.Option(
            "--install/--no-install",
            help="Reinstall the package (editable) when its pyproject.toml changed, as new-service installs.",
        ),
    ] = True,
) -> None:
    """Merge template improvements into a generated service: update, merge, create, delete, keep.

    Re-renders the template at the commit recorded in services/NAME/.template-answers.yaml (base) and at --to (theirs), and merges theirs' changes into the service's files; where both sides changed the same lines the file gets git-style conflict markers and the command exits 1 (docs/scaffolding.md).
    """  # noqa: E501
    from infra.errors import UsageError
    from infra.scaffold.apply import locked
    from infra.scaffold.upgrade import generated_services, parse_answers

    root = _root()
    if all_ == bool(name):
        raise UsageError(
            "name a service or pass --all (not both)", hint="e.g. platform upgrade-service orders-svc"
        )
    overrides = parse_answers(answer or [])
    if all_ and overrides:
        raise UsageError("--answer applies to one service, not --all", hint="name the service")
    reports: list[dict[str, Any]] = []
    with locked(root):
        _recover(root)
        names = generated_services(root) if all_ else [name or ""]
        for service in names:
            reports.append(_upgrade_one(root, service, to, overrides, dry_run, json_out, install))
    if json_out:
        result_json({"services": reports} if all_ else reports[0])
    elif all_ and not reports:
        result("no generated services (hand-written ones are not upgraded)")
    failed = [r for r in reports if r["conflicts"] or r["unresolved"]]
    if failed:
        files = [p for r in failed for p in r["conflicts"] or r["unresolved"]]
        info(f"error: conflicts remain in {len(files)} file(s): {', '.join(files)}")
        hint = "resolve the <<<<<<< / ======= / >>>>>>> markers in those files, run the service's tests"
        info(f"hint: {hint}, commit, then re-run `platform upgrade-service` (it reports up to date)")
        raise typer.Exit(EXIT_CONFLICTS)


def _root() -> Path:
    return context.repo_root()


def _recover(root: Path) -> None:
    from infra.scaffold.apply import recover

    for item in recover(root):
        info(item.line())


def _upgrade_one(
    root: Path,
    name: str,
    to: str | None,
    overrides: dict[str, str],
    dry_run: bool,
    json_out: bool,
    install: bool,
) -> dict[str, Any]:
    from infra.errors import PlatformError, UsageError
    from infra.scaffold import history
    from infra.scaffold.apply import apply_upgrade
    from infra.scaffold.upgrade import build_upgrade

    plan = build_upgrade(root, name, to=to, answers=overrides)
    for warning in plan.warnings:
        info(f"warning: {warning}")
    data = plan.to_json()
    if plan.unresolved and not plan.up_to_date and not dry_run:
        raise PlatformError(
            f"services/{name} still has conflict markers from an earlier upgrade: "
            + ", ".join(plan.unresolved),
            hint="resolve and commit them first, then run the upgrade again",
        )
    if plan.up_to_date:
        data["status"] = "up-to-date" if not plan.unresolved else "unresolved"
        data["conflicts"] = []
    elif dry_run:
        data["status"] = "dry-run"
    else:
        dirty = history.dirty(root, plan.touched())
        if dirty:
            raise UsageError(
                f"{len(dirty)} file(s) the upgrade would change have uncommitted changes, e.g. {dirty[0]}",
                hint="commit or stash them (git stash), then run the upgrade again",
            )
        writes = {f.path: f.data for f in plan.writes}
        try:
            data["regenerated"] = apply_upgrade(root, name, writes, plan.stacks, events=plan.touches_events())
        except OSError as exc:
            raise PlatformError(
                f"could not upgrade services/{name}: {exc}",
                hint="fix the cause (disk space, permissions) and run it again; anything half-done is "
                "rolled back or finished by the next `platform services` command",
            ) from exc
        if install and "pyproject.toml" in writes:
            data["install"] = _reinstall(root, name)
        data["status"] = "conflicts" if plan.conflicts else "upgraded"
    if not json_out:
        result(_format(data))
    return data


def _reinstall(root: Path, name: str) -> dict[str, Any]:
    """new-service's editable install, again: only package metadata changes need it (code is live)."""
    from infra.scaffold.install import install_service, project_python

    if project_python(root) is not None:
        info(f"reinstalling services/{name} in the project environment (pyproject.toml changed) ...")
    installed = install_service(root, name)
    if installed.action != "installed":
        why = f" ({installed.reason})" if installed.reason else ""
        info(f"warning: services/{name} was not reinstalled{why}; run:\n  {installed.command}")
    return installed.to_json()


def _format(data: dict[str, Any]) -> str:
    name, status = data["service"], data["status"]
    move = f"{data['template']} {data['from'][:12]} -> {data['to'][:12]}"
    if status in ("up-to-date", "unresolved"):
        return f"{name}: up to date ({move})"
    head = {"dry-run": "plan for", "upgraded": "upgraded", "conflicts": "upgraded with conflicts"}[status]
    lines = [f"{head} {name} ({move}):"]
    for key, change in data["changed_answers"].items():
        lines.append(f"  answer    {key}: {change['old']!r} -> {change['new']!r}")
    for f in data["files"]:
        note = f" ({f['note']})" if f["note"] else ""
        lines.append(f"  {f['action']:<9} {f['path']}{note}")
    for s in data["stacks"]:
        if s["action"] == "update":
            lines.append(f"  update    {s['file']}: platform:services.{name}")
        else:
            keys = ", ".join(s["keys"])
            lines.append(
                f"  keep      {s['file']}: platform:services.{name} (the template changed {keys}; "
                "yours differs)"
            )
    lines += [f"  {'regenerate':<9} {rel}" for rel in data.get("regenerated", [])]
    if data.get("install", {}).get("action") == "installed":
        lines.append(f"  {'install':<9} services/{name} (editable, {data['install']['python']})")
    if status == "dry-run":
        lines.append("dry run: nothing was written")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Attach `upgrade-service` (top level, beside new-service)."""
    app.command(
        "upgrade-service",
        epilog=examples(
            "platform upgrade-service orders-svc --dry-run",
            "platform upgrade-service orders-svc                 # to the working tree's template",
            "platform upgrade-service orders-svc --to v2 --answer redis=true",
            "platform upgrade-service --all --json",
        ),
    )(upgrade_service)
