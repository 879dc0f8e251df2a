"""Entry point of `platform`. Errors are mapped to exit codes here, and only here.

Keep this module's imports light: `platform --help` must stay fast, so heavy modules (pulumi, checkov,
the renderers) are imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import context, process
from cli.commands import dev, services, stack, upgrade
from cli.help import CONTEXT, examples, humanize
from cli.output import failure
from infra.errors import PlatformError, UsageError

app = typer.Typer(
    name="platform",
    help="Render, check, diff and deploy the marketplace platform; scaffold services; run it locally.\n\n"
    "Every command acts on the checkout that holds the working directory (the nearest folder with "
    "Pulumi.yaml), or on the one -C names.",
    add_completion=False,
    pretty_exceptions_enable=False,
    invoke_without_command=True,
    context_settings=CONTEXT,
    rich_markup_mode="rich",
    epilog=examples(
        "platform new-service orders-svc --route /api/orders --postgres",
        "platform check -s dev",
        "platform dev up",
        "platform -C ../other-clone services list",
    ),
)


COMPLETE_VAR = "_PLATFORM_COMPLETE"


def _version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("marketplace-platform")


@app.callback()
def _global(
    ctx: typer.Context,
    cwd: Annotated[
        Path | None,
        typer.Option(
            "-C",
            "--cwd",
            metavar="DIR",
            help="Run as if started in DIR (like git -C): the checkout is found from there.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(_version())
        raise typer.Exit(0)
    if cwd is not None:
        if not cwd.is_dir():
            raise UsageError(
                f"-C {cwd}: no such folder", hint="pass an existing folder (a checkout or inside one)"
            )
        os.chdir(cwd)
        context.set_cwd(cwd)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@app.command(epilog=examples("platform version", "platform --version"))
def version() -> None:
    """Print the toolkit's version."""
    typer.echo(_version())


@app.command(
    epilog=examples(
        'eval "$(platform completion bash)"          # this shell',
        "platform completion bash > ~/.local/share/bash-completion/completions/platform",
        'platform completion zsh > "${fpath[1]}/_platform"',
        "platform completion fish > ~/.config/fish/completions/platform.fish",
    )
)
def completion(
    shell: Annotated[str, typer.Argument(metavar="bash|zsh|fish", help="The shell to complete in.")],
) -> None:
    """Print the shell completion script for `platform`."""
    from typer._completion_shared import get_completion_script

    if shell not in ("bash", "zsh", "fish"):
        raise UsageError(f"no completion for shell '{shell}'", hint="use one of: bash, zsh, fish")
    script = get_completion_script(prog_name="platform", complete_var=COMPLETE_VAR, shell=shell)
    typer.echo(script)


stack.register(app)
services.register(app)
upgrade.register(app)
dev.register(app)


def command() -> Any:
    """The click command behind the app, with option types shown as users read them (cached)."""
    global _command
    if _command is None:
        _command = humanize(typer.main.get_command(app))
    return _command


_command: Any = None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map PlatformError to its exit code with a one-line message and a hint."""
    cwd = Path.cwd()
    context.reset()
    try:
        return _invoke(argv)
    finally:
        if Path.cwd() != cwd:
            os.chdir(cwd)  # -C: in-process callers (tests) keep their working directory


def _invoke(argv: list[str] | None) -> int:
    if COMPLETE_VAR in os.environ:  # the shell asks for completions (`platform completion <shell>`)
        from typer.completion import completion_init

        completion_init()
    try:
        rc = command().main(
            args=sys.argv[1:] if argv is None else argv,
            prog_name="platform",
            standalone_mode=False,
            complete_var=COMPLETE_VAR,
        )
    except PlatformError as exc:
        failure(exc.message, context.rewrite(exc.hint))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130  # like a shell: the user knows they pressed Ctrl-C
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except typer.Abort:
        # click turns Ctrl-C (and EOF) at a prompt into Abort
        sys.stderr.write("\n")
        return 130
    except OSError as exc:
        # A path the user gave cannot be read or written (missing folder, /proc, no permission).
        where = f"{exc.filename}: " if exc.filename else ""
        failure(f"{where}{exc.strerror or exc}", "check that the path exists and is writable")
        return 1
    except Exception as exc:
        # Typer vendors click; its usage errors carry format_message() and exit_code 2.
        format_message = getattr(exc, "format_message", None)
        if callable(format_message) and getattr(exc, "exit_code", None) == 2:
            failure(format_message(), _usage_hint(exc))
            return 2
        raise
    return rc if isinstance(rc, int) else 0


def _usage_hint(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "platform"
    return f"run `{path} --help` to see its usage"


def run() -> None:
    """Console-script entry point: :func:`main`, then exit without a final full garbage collection.

    A render leaves hundreds of thousands of Pulumi objects; the interpreter's last collection over
    them costs ~0.4 s and frees nothing the OS would not reclaim anyway. (Tests call :func:`main`
    in-process, so the freeze lives here, not there.)
    """
    import gc

    process.short_lived = True
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
