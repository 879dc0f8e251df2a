"""PlatformSpec: the committed stacks load; merging and cross-checks behave; errors carry file + field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.errors import SpecError
from infra.spec import (
    DERIVED_SUFFIXES,
    MAX_SERVICE_NAME,
    STACKS,
    Autoscale,
    GatewayConfig,
    ServiceManifest,
    available_stacks,
    config_from_stack_file,
    load_spec,
)

REPO = Path(__file__).resolve().parents[2]


def spec_copy(dest: Path) -> Path:
    shutil.copytree(REPO / "stacks", dest / "stacks")
    for manifest in (REPO / "services").glob("*/service.yaml"):
        (dest / "services" / manifest.parent.name).mkdir(parents=True)
        shutil.copy(manifest, dest / "services" / manifest.parent.name / "service.yaml")
    (dest / "frontend").mkdir()
    shutil.copy(REPO / "frontend" / "service.yaml", dest / "frontend" / "service.yaml")
    return dest


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stacks_load(stack: str) -> None:
    spec = load_spec(stack, REPO)
    assert spec.config.environment == stack
    assert spec.config.namespace == f"market-{stack}"
    assert {s.name for s in spec.services} == {p.parent.name for p in REPO.glob("services/*/service.yaml")}


def test_available_stacks() -> None:
    assert available_stacks(REPO) == ["dev", "prod", "staging"]


def test_stack_overrides_replace_manifest_resources() -> None:
    prod, dev = load_spec("prod", REPO), load_spec("dev", REPO)
    assert prod.service("auth-svc").resources.limits.memory == "512Mi"
    assert dev.service("auth-svc").resources.limits.memory == "256Mi"
    assert prod.service("auth-svc").overrides.replicas == 3
    assert prod.service("payment-svc").overrides.autoscale == Autoscale(min=3, max=6)


def test_event_maps() -> None:
    spec = load_spec("dev", REPO)
    assert spec.publishers["listing.created"] == ["marketplace-svc"]
    assert spec.consumers["payment-svc"] == ["listing.created", "listing.updated", "listing.deleted"]
    assert "auth-svc" not in spec.consumers


def test_secure_and_foreign_config_keys_are_left_to_pulumi(tmp_path: Path) -> None:
    file = tmp_path / "Pulumi.x.yaml"
    file.write_text(
        "config:\n  platform:domain: a.example.com\n  platform:apiKey: {secure: AAEAAQ==}\n"
        "  kubernetes:context: kind\n"
    )
    assert config_from_stack_file(file) == {"domain": "a.example.com"}


def test_engine_config_overrides_the_stack_file() -> None:
    config = config_from_stack_file(REPO / "stacks" / "Pulumi.dev.yaml")
    config["domain"] = "other.example.com"
    assert load_spec("dev", REPO, config=config).config.domain == "other.example.com"


def test_name_length_boundary() -> None:
    base = {"route": "/api/x"}
    assert ServiceManifest.model_validate({**base, "name": "a" * MAX_SERVICE_NAME}).name
    with pytest.raises(ValidationError, match="characters"):
        ServiceManifest.model_validate({**base, "name": "a" * (MAX_SERVICE_NAME + 1)})


@pytest.mark.parametrize(
    ("route", "ok"),
    [
        ("/api/a", True),
        ("/api/a-b/v1", True),
        ("/api/", False),
        ("/API", False),
        ("api", False),
        ("/", False),
    ],
)
def test_route_format(route: str, ok: bool) -> None:
    data = {"name": "x-svc", "route": route}
    if ok:
        assert ServiceManifest.model_validate(data).route == route
    else:
        with pytest.raises(ValidationError):
            ServiceManifest.model_validate(data)


def test_routes_that_merely_share_a_prefix_do_not_overlap(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    path = root / "services" / "chat-svc" / "service.yaml"
    path.write_text(path.read_text().replace("route: /api/chat", "route: /api/authz"))
    assert load_spec("dev", root).service("chat-svc").manifest.route == "/api/authz"


def test_error_carries_file_and_field(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    path = root / "services" / "payment-svc" / "service.yaml"
    path.write_text(path.read_text().replace("database: payment", "database: auth"))
    with pytest.raises(SpecError) as info:
        load_spec("dev", root)
    assert info.value.file == path
    assert info.value.field == "needs.postgres.database"
    assert info.value.exit_code == 2
    assert info.value.hint


def test_unknown_stack_lists_known_ones() -> None:
    with pytest.raises(SpecError, match="unknown stack 'qa'") as info:
        load_spec("qa", REPO)
    assert info.value.hint == "use one of: dev, prod, staging"


def test_derived_suffixes_are_exactly_the_ones_docs_architecture_names() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text()
    # `<svc>-migrate-<stack>` is a label value, not an object name.
    assert set(re.findall(r"<svc>(-[a-z]+(?:-[a-z]+)*)", doc)) == set(DERIVED_SUFFIXES)


def test_max_service_name_leaves_room_for_the_longest_derived_label_value() -> None:
    longest = "a" * MAX_SERVICE_NAME + "-migrate-" + max(STACKS, key=len)
    assert len(longest) <= 63
    assert all(MAX_SERVICE_NAME + len(suffix) <= 63 for suffix in DERIVED_SUFFIXES)


def test_stack_name_pushing_a_derived_label_past_63_is_a_spec_error(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    stack = "s" * 40  # fine for auth-svc; marketplace-svc-migrate-<stack> is 64 characters
    shutil.copy(root / "stacks" / "Pulumi.dev.yaml", root / "stacks" / f"Pulumi.{stack}.yaml")
    with pytest.raises(SpecError, match=r"label value 'marketplace-svc-migrate-s+' is 64 char") as info:
        load_spec(stack, root)
    assert info.value.field == "name"
    assert info.value.hint


@pytest.mark.parametrize(
    "name",
    [
        "postgres-exporter",
        "redis-exporter",
        "rabbitmq-admin",
        "grafana-admin",
        "alertmanager-webhook",
        "jwt-signing",
        "default-deny",
        "allow-dns",
        "promtail",
        "loki",
        "admin",
        "exporter",
        "default",
    ],
)
def test_platform_object_and_user_names_are_reserved(name: str) -> None:
    with pytest.raises(ValidationError, match="reserved for a platform component"):
        ServiceManifest.model_validate({"name": name, "route": "/api/x"})


def test_name_ending_with_migrate_is_rejected() -> None:
    # orders-migrate's pods would be selected by the policies and labels of orders' migration Job.
    with pytest.raises(ValidationError, match="ends with '-migrate'"):
        ServiceManifest.model_validate({"name": "orders-migrate", "route": "/api/x"})


@pytest.mark.parametrize("database", ["postgres_exporter", "public", "none", "current_user"])
def test_reserved_database_names_are_rejected(database: str) -> None:
    data = {"name": "x-svc", "route": "/api/x", "needs": {"postgres": {"database": database}}}
    with pytest.raises(ValidationError, match="is reserved"):
        ServiceManifest.model_validate(data)


def _manifest_env(root: Path, env: str) -> Path:
    """Give auth-svc's manifest an ``env`` block (a YAML flow mapping); returns the manifest path."""
    path = root / "services" / "auth-svc" / "service.yaml"
    path.write_text(path.read_text() + f"env: {env}\n")
    return path


def _stack_env(root: Path, env: str) -> Path:
    """Give auth-svc an ``env`` block in the dev stack; returns the stack file."""
    path = root / "stacks" / "Pulumi.dev.yaml"
    path.write_text(
        path.read_text().replace("auth-svc: {replicas: 1}", f"auth-svc: {{replicas: 1, env: {env}}}")
    )
    return path


@pytest.mark.parametrize(
    "key",
    [
        "SERVICE_NAME",
        "ENVIRONMENT",
        "LOG_LEVEL",
        "CORS_ORIGINS",
        "POSTGRES_HOST",
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "REDIS_USER",
        "RABBITMQ_VHOST",
        "JWT_ISSUER",
        "SECRETS_DIR",
    ],
)
def test_manifest_env_may_not_override_a_platform_variable(tmp_path: Path, key: str) -> None:
    path = _manifest_env(spec_copy(tmp_path), f"{{{key}: x}}")
    with pytest.raises(SpecError, match=f"env: '{key}' is set by the platform") as info:
        load_spec("dev", tmp_path)
    assert (info.value.file, info.value.field) == (path, "env")
    assert "remove it" in info.value.hint


def test_stack_env_may_not_override_a_platform_variable(tmp_path: Path) -> None:
    path = _stack_env(spec_copy(tmp_path), "{JWT_SECRET: from-the-stack}")
    with pytest.raises(SpecError, match="'JWT_SECRET' is set by the platform") as info:
        load_spec("dev", tmp_path)
    assert (info.value.file, info.value.field) == (path, "platform:services.auth-svc.env")


@pytest.mark.parametrize("key", ["STRIPE_PASSWORD", "WEBHOOK_SECRET", "GITHUB_TOKEN", "STRIPE_API_KEY"])
def test_secret_like_env_names_point_to_a_secret(tmp_path: Path, key: str) -> None:
    _manifest_env(spec_copy(tmp_path), f"{{{key}: x}}")
    with pytest.raises(SpecError, match=f"'{key}' looks like a secret") as info:
        load_spec("dev", tmp_path)
    assert "Secret" in info.value.hint


def test_stack_env_keys_must_be_upper_snake_case(tmp_path: Path) -> None:
    _stack_env(spec_copy(tmp_path), "{feature-flags: x}")
    with pytest.raises(SpecError, match="'feature-flags' must be UPPER_SNAKE_CASE"):
        load_spec("dev", tmp_path)


def test_plain_settings_even_about_tokens_are_allowed(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    _manifest_env(root, "{FEATURE_FLAGS: search}")
    _stack_env(root, "{ACCESS_TOKEN_TTL_SECONDS: '600'}")
    assert load_spec("dev", root).service("auth-svc").env == {
        "FEATURE_FLAGS": "search",
        "ACCESS_TOKEN_TTL_SECONDS": "600",
    }


def test_gateway_ingress_namespace_defaults_to_ingress_nginx_and_must_be_a_namespace_name() -> None:
    assert load_spec("dev", REPO).config.gateway.ingress_namespace == "ingress-nginx"
    with pytest.raises(ValidationError, match="not a namespace name"):
        GatewayConfig.model_validate({"ingressNamespace": "Ingress_NGINX"})


# ---------------------------------------------------------------- the web app (frontend/service.yaml)


def test_web_app_loads_with_its_stack_sizing() -> None:
    spec = load_spec("prod")
    assert spec.web is not None
    assert spec.web.manifest.kind == "web"
    assert spec.web.overrides.autoscale is not None
    assert spec.web.name not in {svc.name for svc in spec.services}


def test_web_app_may_not_take_a_services_name(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    path = root / "frontend" / "service.yaml"
    path.write_text(path.read_text().replace("name: web", "name: auth-svc"))
    with pytest.raises(SpecError) as info:
        load_spec("dev", root)
    assert info.value.file == path
    assert info.value.field == "name"
    assert "auth-svc" in str(info.value)


def test_web_app_manifest_rejects_unknown_keys(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    path = root / "frontend" / "service.yaml"
    path.write_text(path.read_text() + "route: /shop\n")
    with pytest.raises(SpecError) as info:
        load_spec("dev", root)
    assert info.value.field == "route"
    assert info.value.hint


def test_stack_entry_for_a_missing_web_app_is_an_error(tmp_path: Path) -> None:
    root = spec_copy(tmp_path)
    (root / "frontend" / "service.yaml").unlink()
    with pytest.raises(SpecError) as info:
        load_spec("dev", root)
    assert info.value.field == "platform:services.web"
