"""Settings read exactly the documented environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from servicekit.settings import Settings
from servicekit.testing import TEST_PUBLIC_KEYS, TEST_SIGNING_KEY

ENV = {
    "SERVICE_NAME": "marketplace-svc",
    "ENVIRONMENT": "prod",
    "LOG_LEVEL": "WARNING",
    "LOG_FORMAT": "json",
    "CORS_ORIGINS": "https://market.example.com, https://www.market.example.com",
    "POSTGRES_HOST": "postgres",
    "POSTGRES_PORT": "5433",
    "POSTGRES_DB": "marketplace",
    "POSTGRES_USER": "marketplace-svc",
    "POSTGRES_PASSWORD": "p@ss:w/rd",
    "DB_POOL_SIZE": "7",
    "DB_MAX_OVERFLOW": "3",
    "DB_POOL_RECYCLE_SECONDS": "600",
    "REDIS_HOST": "redis",
    "REDIS_PORT": "6380",
    "REDIS_DB": "1",
    "REDIS_USER": "marketplace-svc",
    "REDIS_PASSWORD": "r",
    "RABBITMQ_HOST": "rabbitmq",
    "RABBITMQ_PORT": "5673",
    "RABBITMQ_VHOST": "market",
    "RABBITMQ_USER": "marketplace-svc",
    "RABBITMQ_PASSWORD": "q",
    "RABBITMQ_RETRY_DELAYS_MS": "1000,5000,30000",
    "JWT_PUBLIC_KEYS": TEST_PUBLIC_KEYS,
    "JWT_ISSUER": "https://market.example.com/api/auth",
    "JWT_AUDIENCE": "marketplace",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return ENV


def test_reads_every_documented_variable(env: dict[str, str]) -> None:
    s = Settings()  # type: ignore[call-arg]
    assert s.service_name == "marketplace-svc"
    assert s.environment == "prod"
    assert s.log_level == "WARNING"
    assert s.cors_origins == ["https://market.example.com", "https://www.market.example.com"]
    assert (s.db_pool_size, s.db_max_overflow, s.db_pool_recycle_seconds) == (7, 3, 600)
    assert (s.redis_host, s.redis_port, s.redis_db, s.redis_user) == ("redis", 6380, 1, "marketplace-svc")
    assert (s.rabbitmq_host, s.rabbitmq_port, s.rabbitmq_vhost) == ("rabbitmq", 5673, "market")
    assert s.rabbitmq_retry_delays_ms == [1000, 5000, 30000]
    assert s.max_attempts == 4
    assert s.jwt_issuer == "https://market.example.com/api/auth"
    assert s.jwt_public_keys == TEST_PUBLIC_KEYS
    assert s.jwt_signing_key is None  # only the token issuer has one
    assert s.postgres_enabled
    assert s.redis_enabled
    assert s.rabbitmq_enabled
    # special characters in the password are URL-escaped
    assert s.database_url == "postgresql+asyncpg://marketplace-svc:p%40ss%3Aw%2Frd@postgres:5433/marketplace"
    assert s.redis_prefix == "marketplace-svc:"


def test_backends_are_enabled_only_when_their_host_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_NAME", "auth-svc")
    for key in ("POSTGRES_HOST", "REDIS_HOST", "RABBITMQ_HOST"):
        monkeypatch.delenv(key, raising=False)
    s = Settings()  # type: ignore[call-arg]
    assert not (s.postgres_enabled)
    assert not (s.redis_enabled)
    assert not (s.rabbitmq_enabled)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JWT_SIGNING_KEY", "short"),
        ("JWT_PUBLIC_KEYS", "not json"),
        ("JWT_PUBLIC_KEYS", '{"keys": []}'),
        ("JWT_PUBLIC_KEYS", '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
    ],
)
def test_unusable_token_keys_are_rejected(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.lower()):
        Settings()  # type: ignore[call-arg]


def test_missing_service_name_is_rejected(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERVICE_NAME")
    with pytest.raises(ValidationError, match="service_name"):
        Settings()  # type: ignore[call-arg]


def test_empty_retry_delays_are_rejected(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_RETRY_DELAYS_MS", "")
    with pytest.raises(ValidationError, match="at least one delay"):
        Settings()  # type: ignore[call-arg]


def test_subclass_extends_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    class MarketSettings(Settings):
        listing_cache_ttl_s: int = 30

    monkeypatch.setenv("LISTING_CACHE_TTL_S", "5")
    assert MarketSettings().listing_cache_ttl_s == 5  # type: ignore[call-arg]


def test_credentials_are_read_from_files_in_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Kubernetes mounts each Secret key as a file named like the variable (infra/components/service.py).
    secrets = tmp_path
    (secrets / "JWT_PUBLIC_KEYS").write_text(TEST_PUBLIC_KEYS)
    (secrets / "JWT_SIGNING_KEY").write_text(TEST_SIGNING_KEY)
    (secrets / "POSTGRES_PASSWORD").write_text("from-file")
    monkeypatch.setenv("SERVICE_NAME", "auth-svc")
    monkeypatch.setenv("SECRETS_DIR", str(secrets))
    for name in ("JWT_PUBLIC_KEYS", "JWT_SIGNING_KEY", "POSTGRES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()  # type: ignore[call-arg]
    assert s.jwt_public_keys == TEST_PUBLIC_KEYS
    assert s.jwt_signing_key is not None
    assert s.jwt_signing_key.get_secret_value() == TEST_SIGNING_KEY
    assert s.postgres_password.get_secret_value() == "from-file"


def test_environment_variables_win_over_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "POSTGRES_PASSWORD").write_text("from-file")
    monkeypatch.setenv("SERVICE_NAME", "auth-svc")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("POSTGRES_PASSWORD", "from-env")
    assert Settings().postgres_password.get_secret_value() == "from-env"  # type: ignore[call-arg]


def _placeholders() -> list[tuple[str, str]]:
    """(variable, value) of every line of the repository's .env.example."""
    lines = (Path(__file__).resolve().parents[3] / ".env.example").read_text().splitlines()
    return [tuple(line.split("=", 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


@pytest.mark.parametrize("field", ["postgres_password", "redis_password", "rabbitmq_password"])
def test_env_example_placeholders_are_refused_as_passwords(field: str) -> None:
    """Attack (issue 11, item 15): compose started with the .env.example values still in place."""
    placeholders = _placeholders()
    assert placeholders
    for variable, value in placeholders:
        with pytest.raises(ValidationError, match="placeholder") as refused:
            Settings(service_name="auth-svc", **{field: value})  # type: ignore[arg-type]
        assert field in str(refused.value), variable


def test_env_example_placeholders_are_refused_as_token_keys() -> None:
    values = dict(_placeholders())
    for variable in ("JWT_SIGNING_KEY", "JWT_PUBLIC_KEYS"):
        with pytest.raises(ValidationError, match="placeholder"):
            Settings(service_name="auth-svc", **{variable.lower(): values[variable]})  # type: ignore[arg-type]


def test_real_passwords_are_accepted() -> None:
    settings = Settings(service_name="auth-svc", postgres_password="x7-real-generated-password")  # type: ignore[call-arg]
    assert settings.postgres_password.get_secret_value() == "x7-real-generated-password"
