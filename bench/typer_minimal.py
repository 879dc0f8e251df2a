"""The smallest useful Typer app: one command. ``bench/render.py`` times its ``--help`` as the floor
that ``platform --help`` is compared with (same interpreter, same Typer, nothing else imported)."""

import typer

app = typer.Typer(add_completion=False)


@app.command()
def hello(name: str = typer.Option("world", help="Who to greet.")) -> None:
    """Greet someone."""
    typer.echo(f"hello {name}")


if __name__ == "__main__":
    app()
