"""Interactive new-service on a real terminal (a pty): each answer is validated when typed and asked
again, earlier answers are kept, consumes offers the known events, Ctrl-C exits 130 without an error."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest

from cli.main import command
from infra.scaffold.sandbox import copy_checkout, tree_digest
from infra.scaffold.template import ARGUMENT_QUESTIONS, OPTION_QUESTIONS, flag_text, load_template
from infra.spec import REPO_ROOT


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def converse(argv: list[str], script: list[tuple[str, bytes]], timeout: float = 60) -> tuple[int, str]:
    """Run `platform <argv>` on a pty; when the output ends with a prompt matching the next pattern of
    *script*, type its answer (b"\\x03" is Ctrl-C). Returns (exit code, transcript)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "cli.main", *argv])
    transcript, pending = "", list(script)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
            tail = transcript.rstrip()
            if pending and tail.endswith((":", "]")) and re.search(pending[0][0], tail.splitlines()[-1]):
                os.write(fd, pending.pop(0)[1])
    finally:
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), transcript


def test_invalid_answers_are_asked_again_and_earlier_ones_kept(repo: Path) -> None:
    script = [
        (r"service name", b"Bad_Name\r"),  # not a DNS-1035 label: asked again
        (r"service name", b"stock-svc\r"),
        (r"description", b"\r"),
        (r"route prefix", b"api/stock\r"),  # no leading slash: asked again
        (r"route prefix", b"/api/stock\r"),
        (r"resource", b"\r"),
        (r"port", b"99999\r"),  # above 65535: asked again
        (r"port", b"8000\r"),
        (r"PostgreSQL", b"n\r"),
        (r"Redis", b"n\r"),
        (r"publishes", b"stock.moved\r"),
        (r"consumes", b"nobody.publishes.this\r"),  # no publisher: asked again
        (r"consumes", b"listing.created\r"),  # needs postgres (a rule): asked again, postgres kept
        (r"consumes", b"\r"),
    ]
    code, text = converse(["new-service", "-s", "dev", "--no-install"], script)
    assert code == 0, text
    assert text.count("service name") == 2
    assert "known events: " in text
    assert "listing.created" in text
    assert "error: no service publishes nobody.publishes.this" in text
    assert "--consumes needs --postgres" in text
    manifest = (repo / "services" / "stock-svc" / "service.yaml").read_text()
    assert "route: /api/stock" in manifest
    assert "publishes: [stock.moved]" in manifest


def test_ctrl_c_exits_130_without_an_error_and_writes_nothing(repo: Path) -> None:
    before = tree_digest(repo)
    code, text = converse(["new-service"], [(r"service name", b"late-svc\r"), (r"description", b"\x03")])
    assert code == 130, text
    assert "error" not in text.lower()
    assert "Traceback" not in text
    assert tree_digest(repo) == before


def test_hints_name_flags_that_exist() -> None:
    """Every question of the fastapi template is answered by a real argument or option of new-service."""
    params = {p.name: p for p in command().commands["new-service"].params}
    opts = {o for p in params.values() for o in (*p.opts, *p.secondary_opts)}
    template = load_template("fastapi", REPO_ROOT)
    for name, question in template.spec.questions.items():
        shown = flag_text(name, question)
        if name in ARGUMENT_QUESTIONS:
            assert params[name].param_type_name == "argument"
            assert shown == name.upper()
        else:
            assert name in OPTION_QUESTIONS
            assert shown in opts, shown


def test_missing_name_off_a_terminal_names_the_argument(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    assert main(["new-service", "--no-input"]) == 2
    err = capsys.readouterr().err
    assert "--name" not in err
    assert "hint: give NAME, e.g. `platform new-service orders-svc`" in err
