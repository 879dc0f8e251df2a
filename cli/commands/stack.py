"""`platform render | check | diff | preview | up`: the stack commands.

Thin over infra/: pulumi, checkov and the offline engine are imported inside the commands so that
`platform --help` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli import process
from cli.context import repo_root
from cli.help import examples
from cli.output import info, result, result_json
from infra.errors import PlatformError, UsageError

#: The one stack option: -s/--stack, default $PLATFORM_STACK, else dev - in every command.
StackOption = Annotated[
    str,
    typer.Option(
        "--stack",
        "-s",
        envvar="PLATFORM_STACK",
        metavar="STACK",
        help="Stack: dev, staging or prod (stacks/Pulumi.<stack>.yaml).",
    ),
]
DEFAULT_STACK = "dev"
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON) on stdout.")]


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"


def _prepare_out_dir(out: Path) -> None:
    """Create the ``-o`` folder before rendering, so a bad path fails fast with one line."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out} is a file, not a folder", hint="pass a folder; it is created if missing")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlatformError(
            f"cannot create {out}: {exc.strerror or exc}", hint="pass a writable folder with -o"
        ) from exc


def _is_rendered_manifest(path: Path) -> bool:
    """Whether *path* is exactly what the writer would write: one object named ``<kind>-<name>.yaml``."""
    import yaml

    from infra.offline import manifest_filename

    try:
        docs = [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_yaml_loader()) if d]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return (
        len(docs) == 1
        and isinstance(docs[0], dict)
        and "apiVersion" in docs[0]
        and manifest_filename(docs[0]) == path.name
    )


def _yaml_loader() -> type:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def prune_stale_manifests(out: Path, written: list[Path]) -> list[Path]:
    """Delete manifests an earlier render left in *out* that this render did not write.

    Only files the writer itself would have produced are touched: ``<kind>-<name>.yaml`` holding
    exactly that one Kubernetes object. Anything else in the folder (notes, kustomization files,
    hand-written manifests under other names) is left alone. Returns the deleted paths.
    """
    keep = {p.name for p in written}
    stale = [
        p
        for p in sorted(out.glob("*.yaml"))
        if p.name not in keep and p.is_file() and _is_rendered_manifest(p)
    ]
    for path in stale:
        path.unlink()
    return stale


def render(
    stack: StackOption = DEFAULT_STACK,
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Write the result here instead of stdout: one YAML file per manifest "
            "(<kind>-<name>.yaml); manifests an earlier render wrote there and this one does not are "
            "deleted, other files are kept.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Render a stack's Kubernetes manifests offline (Pulumi mock runtime; secrets redacted)."""
    from infra.spec import load_spec

    root = repo_root()
    load_spec(stack, root)
    if out is not None and as_json:
        raise UsageError("-o writes YAML files; --json only applies to stdout", hint="drop --json or -o")
    if out is not None:
        _prepare_out_dir(out)
    from infra.offline import dump_manifests, render_stack, write_manifests

    manifests = render_stack(stack, root, freeze=process.short_lived)
    if out is None:
        result(dump_manifests(manifests, "json" if as_json else "yaml"))
        return
    try:
        written = write_manifests(manifests, out)
        removed = prune_stale_manifests(out, written)
    except OSError as exc:
        raise PlatformError(
            f"cannot write manifests to {out}: {exc.strerror or exc}",
            hint="pass a writable folder with -o",
        ) from exc
    info(f"wrote {len(written)} manifests to {out}")
    if removed:
        info(f"removed {len(removed)} stale manifest(s): " + ", ".join(p.name for p in removed))


def check(
    stack: StackOption = DEFAULT_STACK,
    as_json: JsonOption = False,
    skip_checkov: Annotated[bool, typer.Option("--skip-checkov", help="Do not run checkov.")] = False,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="REF",
            help="Git ref to compare with (e.g. origin/main): also fail when the change would replace a "
            "data store or change a volume claim.",
        ),
    ] = None,
    allow_replace: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-replace",
            metavar="KIND/NAME",
            help="KIND/NAME whose replacement or volume-claim change is intended (after following "
            "docs/runbooks.md, 'Growing a data store's volume'); repeatable.",
        ),
    ] = None,
) -> None:
    """Check a stack: strict schema, checkov policies, reference integrity and lifecycle rules."""
    import time

    from infra.check import Stages, externals_for, run_checks
    from infra.spec import load_spec

    if allow_replace and base is None:  # bad usage fails before any work (and any progress line)
        raise UsageError(
            "--allow-replace only applies with --base", hint="pass --base REF (e.g. origin/main)"
        )
    stage = Stages(info, time.monotonic())
    root = repo_root()
    spec = stage("spec", lambda: load_spec(stack, root))
    from infra.lifecycle.snapshot import Snapshot
    from infra.offline import render

    plan = None
    if base is None:
        rendered = stage("render (Pulumi mocks)", lambda: render(stack, root, freeze=process.short_lived))
        snapshot, manifests = Snapshot.from_rendered(stack, rendered), rendered.manifests
    else:
        from infra.fork import render_both
        from infra.lifecycle.plan import plan as plan_change
        from infra.offline import sort_manifests

        old, snapshot = stage(
            f"render {base} and the tree", lambda: render_both(root, base, stack, freeze=process.short_lived)
        )
        manifests = sort_manifests(snapshot.manifests())
        plan = plan_change(old, snapshot, base)
    report = run_checks(
        stack,
        manifests,
        kubernetes_version=spec.config.kubernetes_version,
        externals=externals_for(spec),
        root=root,
        checkov=not skip_checkov,
        snapshot=snapshot,
        plan=plan,
        allow_replace=tuple(allow_replace or ()),
        spec=spec,
        progress=stage,
    )
    stage.line("total", "ok" if report.ok else "failed")
    if as_json:
        result_json(report.to_dict())
    else:
        result(report.format_text())
    if not report.ok:
        failed = sum(s.failed for s in report.sections)
        raise PlatformError(
            f"stack {stack}: {failed} check(s) failed",
            hint="fix the findings listed in the report (kind/name field: problem)",
        )


def diff(
    base: Annotated[
        str, typer.Option("--base", metavar="REF", help="Git ref to compare against, e.g. origin/main.")
    ],
    stack: StackOption = DEFAULT_STACK,
    fmt: Annotated[
        DiffFormat, typer.Option("--format", help="Human-readable layout: text, or markdown (a PR comment).")
    ] = DiffFormat.text,
    as_json: JsonOption = False,
) -> None:
    """Show what `pulumi up` would do going from a git ref to the working tree.

    Per resource: create, update, replace or delete, what forces a replacement, which workloads roll
    and why; hazards first.
    """
    from infra import diff as stack_diff
    from infra.spec import load_spec

    root = repo_root()
    load_spec(stack, root)
    outcome = stack_diff.diff_stack(stack, root, base, freeze=process.short_lived)
    if as_json:
        result_json(stack_diff.format_json(outcome))
    elif fmt is DiffFormat.markdown:
        result(stack_diff.format_markdown(outcome))
    else:
        result(stack_diff.format_text(outcome))


PulumiArgs = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[-- PULUMI_FLAGS...]",
        help="Flags passed to Pulumi as they are, after `--` (e.g. -- --target URN --diff).",
        show_default=False,
    ),
]


def preview(stack: StackOption = DEFAULT_STACK, pulumi_args: PulumiArgs = None) -> None:
    """Run `pulumi preview` for a stack (needs the Pulumi CLI and a login); exits with Pulumi's code."""
    from infra.pulumi_cli import run_pulumi
    from infra.spec import load_spec

    root = repo_root()
    load_spec(stack, root)
    run_pulumi("preview", stack, root, extra=tuple(pulumi_args or ()))


def up(
    stack: StackOption = DEFAULT_STACK,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    pulumi_args: PulumiArgs = None,
) -> None:
    """Run `pulumi up` for a stack (needs the Pulumi CLI and a login); exits with Pulumi's code."""
    from infra.pulumi_cli import run_pulumi
    from infra.spec import load_spec

    root = repo_root()
    load_spec(stack, root)
    run_pulumi("up", stack, root, yes=yes, extra=tuple(pulumi_args or ()))


EXAMPLES = {
    "render": examples(
        "platform render -s prod > prod.yaml",
        "platform render -s dev -o manifests/",
        "platform render -s staging --json | jq '.[].kind'",
    ),
    "check": examples(
        "platform check                      # the dev stack",
        "platform check -s prod --base origin/main",
        "platform check -s staging --json --skip-checkov",
    ),
    "diff": examples(
        "platform diff -s prod --base origin/main",
        "platform diff -s staging --base origin/main --format markdown > comment.md",
        "platform diff --base HEAD~1 --json",
    ),
    "preview": examples("platform preview -s staging", "platform preview -s prod -- --diff --target URN"),
    "up": examples("platform up -s staging", "platform up -s prod --yes -- --parallel 4"),
}


def register(app: typer.Typer) -> None:
    """Attach the stack commands to the top-level app."""
    for command in (render, check, diff, preview, up):
        app.command(epilog=EXAMPLES[command.__name__])(command)
