"""Entry point of `platform`. Errors are mapped to exit codes here, and only here.

Keep this module's imports light: `platform --help` must stay fast, so heavy modules (pulumi, checkov,
the renderers) are imported inside the commands that need them.
"""

from __future__ import annotations

import sys

import typer

from cli import process
from cli.commands import dev, services, stack, upgrade
from cli.output import failure
from infra.errors import PlatformError

app = typer.Typer(
    name="platform",
    help="Render, check, diff and deploy the marketplace platform; scaffold services; run it locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the toolkit's version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("marketplace-platform"))


stack.register(app)
services.register(app)
upgrade.register(app)
dev.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map PlatformError to its exit code with a one-line message and a hint."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except PlatformError as exc:
        failure(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        failure("interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0)
    except typer.Abort:
        failure("aborted")
        return 1
    except OSError as exc:
        # A path the user gave cannot be read or written (missing folder, /proc, no permission).
        where = f"{exc.filename}: " if exc.filename else ""
        failure(f"{where}{exc.strerror or exc}", "check that the path exists and is writable")
        return 1
    except Exception as exc:
        # Typer vendors click; its usage errors carry format_message() and exit_code 2.
        format_message = getattr(exc, "format_message", None)
        if callable(format_message) and getattr(exc, "exit_code", None) == 2:
            failure(format_message(), "run the command with --help to see its usage")
            return 2
        raise
    return rc if isinstance(rc, int) else 0


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
