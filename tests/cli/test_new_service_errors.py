"""`platform new-service` bad input: one line + hint, exit 2, no traceback, the tree untouched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli.main import main
from infra.scaffold.sandbox import copy_checkout, tree_digest
from infra.spec import MAX_SERVICE_NAME, REPO_ROOT, load_spec


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_checkout(REPO_ROOT, tmp_path / "repo")
    monkeypatch.chdir(root)
    return root


def _ghost(root: Path) -> None:
    folder = root / "services" / "ghost-svc"
    folder.mkdir()
    (folder / "service.yaml").write_text("name: ghost-svc\nroute: /api/ghost\n")


def _break_prod(root: Path) -> None:
    file = root / "stacks" / "Pulumi.prod.yaml"
    file.write_text(file.read_text() + "  platform:oops: [unclosed\n")


def _nothing(root: Path) -> None:
    return None


ORDERS = ["new-service", "orders-svc", "--no-input"]
# (id, argv, setup, words the error line must contain)
CASES: list[tuple[str, list[str], Callable[[Path], None], list[str]]] = [
    ("uppercase", ["new-service", "Orders", "--no-input"], _nothing, ["'Orders'", "DNS-1035"]),
    ("underscore", ["new-service", "orders_svc", "--no-input"], _nothing, ["'orders_svc'", "DNS-1035"]),
    ("dot", ["new-service", "orders.svc", "--no-input"], _nothing, ["'orders.svc'", "DNS-1035"]),
    ("leading-digit", ["new-service", "1orders", "--no-input"], _nothing, ["'1orders'", "DNS-1035"]),
    ("leading-hyphen", ["new-service", "--no-input", "--", "-orders"], _nothing, ["'-orders'", "DNS-1035"]),
    ("trailing-hyphen", ["new-service", "orders-", "--no-input"], _nothing, ["'orders-'", "DNS-1035"]),
    ("empty", ["new-service", "", "--no-input"], _nothing, ["empty"]),
    (
        "too-long",
        ["new-service", "a" * (MAX_SERVICE_NAME + 1), "--no-input"],
        _nothing,
        [f"{MAX_SERVICE_NAME + 1} characters", f"at most {MAX_SERVICE_NAME}"],
    ),
    ("ends-with-migrate", ["new-service", "orders-migrate", "--no-input"], _nothing, ["'-migrate'"]),
    ("reserved", ["new-service", "postgres", "--no-input"], _nothing, ["'postgres'", "reserved"]),
    ("reserved-gateway", ["new-service", "gateway", "--no-input"], _nothing, ["'gateway'", "reserved"]),
    ("python-keyword", ["new-service", "import", "--no-input"], _nothing, ["shadows"]),
    ("exists", ["new-service", "auth-svc", "--no-input"], _nothing, ["'auth-svc' already exists"]),
    ("unregistered-folder", ["new-service", "ghost-svc", "--no-input"], _ghost, ["not registered"]),
    ("traversal", ["new-service", "../evil", "--no-input"], _nothing, ["is a path"]),
    ("traversal-deep", ["new-service", "a/../../b", "--no-input"], _nothing, ["is a path"]),
    ("route-duplicate", [*ORDERS, "--route", "/api/auth"], _nothing, ["duplicates '/api/auth' of auth-svc"]),
    ("route-shadows", [*ORDERS, "--route", "/api"], _nothing, ["overlaps '/api/auth'"]),
    (
        "route-nested",
        [*ORDERS, "--route", "/api/chat/orders"],
        _nothing,
        ["overlaps '/api/chat' of chat-svc"],
    ),
    ("route-no-slash", [*ORDERS, "--route", "api/orders"], _nothing, ["--route", "not a route"]),
    ("route-trailing-slash", [*ORDERS, "--route", "/api/orders/"], _nothing, ["not a route"]),
    ("event-uppercase", [*ORDERS, "--publishes", "Order.Created"], _nothing, ["--publishes", "not an event"]),
    ("event-one-word", [*ORDERS, "--consumes", "listing"], _nothing, ["--consumes", "not an event"]),
    ("event-twice", [*ORDERS, "--publishes", "order.created,order.created"], _nothing, ["twice"]),
    (
        "unpublished",
        [*ORDERS, "--consumes", "order.shipped"],
        _nothing,
        ["no service publishes 'order.shipped'"],
    ),
    ("consume-no-db", [*ORDERS, "--no-postgres", "--consumes", "listing.created"], _nothing, ["--postgres"]),
    ("unknown-stack", [*ORDERS, "-s", "qa"], _nothing, ["unknown stack 'qa'"]),
    ("broken-yaml", ORDERS, _break_prod, ["Pulumi.prod.yaml", "broken YAML"]),
    ("unknown-template", [*ORDERS, "--template", "django"], _nothing, ["unknown template 'django'"]),
    ("missing-name", ["new-service", "--no-input"], _nothing, ["missing answer for 'name'"]),
    ("port-low", [*ORDERS, "--port", "80"], _nothing, ["--port", "below 1024"]),
    ("redis-db-high", [*ORDERS, "--redis", "--redis-db", "16"], _nothing, ["--redis-db", "above 15"]),
    (
        "database-without-postgres",
        [*ORDERS, "--no-postgres", "--database", "x"],
        _nothing,
        ["does not apply"],
    ),
    ("database-taken", [*ORDERS, "--database", "auth"], _nothing, ["'auth' is already owned by auth-svc"]),
    ("database-pg-prefix", [*ORDERS, "--database", "pg_orders"], _nothing, ["reserves role names"]),
    ("resource-singular", [*ORDERS, "--resource", "data"], _nothing, ["plural"]),
    ("bad-set", [*ORDERS, "--set", "novalue"], _nothing, ["KEY=VALUE"]),
]


@pytest.mark.parametrize(("argv", "setup", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_hint_exit_2_and_changes_nothing(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    setup: Callable[[Path], None],
    words: list[str],
) -> None:
    setup(repo)
    before = tree_digest(repo)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ")
    assert lines[1].startswith("hint: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in err
    assert out == ""
    assert tree_digest(repo) == before


def test_unpublished_event_error_lists_what_is_published(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ORDERS, "--consumes", "order.shipped"]) == 2
    hint = capsys.readouterr().err.splitlines()[1]
    published = sorted(load_spec("dev", repo).publishers)
    assert published
    assert hint == f"hint: published events are: {', '.join(published)}"


def test_bad_input_case_count() -> None:
    assert len(CASES) >= 20
