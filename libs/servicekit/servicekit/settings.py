"""Service settings read from exactly the environment variables in docs/architecture.md.

Services extend :class:`Settings` by subclassing and keep their own cached ``get_settings()``.
A backend is enabled when its ``*_HOST`` variable is set (the ConfigMap only carries it when the
manifest ``needs`` it), so the app factory opens only the pools a service needs.

Credentials may also come as files: when ``SECRETS_DIR`` is set (Kubernetes mounts the service's
Secrets there, one file per variable, e.g. ``POSTGRES_PASSWORD``), each file fills the field of the
same name. Environment variables win over files.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from servicekit.keys import load_key_set, load_signing_key

#: How ``.env.example`` spells every secret; such a value is never accepted.
PLACEHOLDER = "change-me"
Environment = Literal["dev", "staging", "prod", "local", "test"]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """The environment contract of every service (see docs/architecture.md)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    service_name: Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    environment: Environment = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    log_file: str | None = Field(None, description="also append JSON lines here (local runner)")
    cors_origins: Annotated[list[str], NoDecode] = []

    postgres_host: str | None = None
    postgres_port: int = 5432
    postgres_db: str | None = None
    postgres_user: str | None = None
    postgres_password: SecretStr = SecretStr("")
    db_pool_size: Annotated[int, Field(ge=1)] = 5
    db_max_overflow: Annotated[int, Field(ge=0)] = 10
    db_pool_recycle_seconds: Annotated[int, Field(ge=1)] = 1800

    redis_host: str | None = None
    redis_port: int = 6379
    redis_db: Annotated[int, Field(ge=0, le=15)] = 0
    redis_user: str | None = None
    redis_password: SecretStr | None = None

    rabbitmq_host: str | None = None
    rabbitmq_port: int = 5672
    rabbitmq_vhost: str = "market"
    rabbitmq_user: str | None = None
    rabbitmq_password: SecretStr = SecretStr("")
    rabbitmq_retry_delays_ms: Annotated[list[Annotated[int, Field(ge=1)]], NoDecode] = [1000, 5000, 30000]

    jwt_public_keys: str | None = Field(
        None, description="JWK Set (JSON) of the token-verification keys; every service has it"
    )
    jwt_signing_key: SecretStr | None = Field(
        None, description="the token issuer's Ed25519 key (PEM or a 32+ character secret); auth-svc only"
    )
    jwt_issuer: str = "http://localhost/api/auth"
    jwt_audience: str = "marketplace"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init kwargs, then environment, then files in ``SECRETS_DIR`` (if set)."""
        sources = [init_settings, env_settings, dotenv_settings]
        secrets_dir = os.environ.get("SECRETS_DIR")
        if secrets_dir:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir, case_sensitive=False))
        return tuple(sources)

    @field_validator("cors_origins", "rabbitmq_retry_delays_ms", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("jwt_public_keys")
    @classmethod
    def _key_set(cls, value: str | None) -> str | None:
        if value is not None:
            load_key_set(value)  # raises InvalidKey (a ValueError) with what is wrong
        return value

    @field_validator("jwt_signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            load_signing_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        """``.env.example`` ships every secret as ``change-me-...``: refuse to start with one."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().strip().startswith(PLACEHOLDER):
                raise ValueError(
                    f"{name} is the .env.example placeholder ({PLACEHOLDER}...), not a secret: "
                    "set a real, random value in .env"
                )
        return self

    @model_validator(mode="after")
    def _signing_key_is_published(self) -> Settings:
        if self.jwt_signing_key is not None and self.jwt_public_keys is not None:
            kid = load_signing_key(self.jwt_signing_key.get_secret_value()).kid
            if load_key_set(self.jwt_public_keys).get(kid) is None:
                raise ValueError(
                    f"JWT_PUBLIC_KEYS does not publish the signing key (kid {kid}): no service could "
                    "verify its tokens; publish the new key everywhere before signing with it"
                )
        return self

    @field_validator("rabbitmq_retry_delays_ms")
    @classmethod
    def _non_empty(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("needs at least one delay, e.g. '1000,5000,30000'")
        return value

    @property
    def postgres_enabled(self) -> bool:
        """True when the service was given a PostgreSQL database."""
        return bool(self.postgres_host)

    @property
    def redis_enabled(self) -> bool:
        """True when the service was given Redis."""
        return bool(self.redis_host)

    @property
    def rabbitmq_enabled(self) -> bool:
        """True when the service was given RabbitMQ."""
        return bool(self.rabbitmq_host)

    @property
    def database_url(self) -> str:
        """SQLAlchemy async URL (``postgresql+asyncpg://``) of the service's database."""
        user = quote(self.postgres_user or "", safe="")
        password = quote(self.postgres_password.get_secret_value(), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        where = f"{self.postgres_host}:{self.postgres_port}/{self.postgres_db or ''}"
        return f"postgresql+asyncpg://{auth}{where}"

    @property
    def max_attempts(self) -> int:
        """Deliveries before a message is dead-lettered: the first plus one per retry delay."""
        return len(self.rabbitmq_retry_delays_ms) + 1

    @property
    def redis_prefix(self) -> str:
        """Every Redis key of this service starts with this (the ACL allows nothing else)."""
        return f"{self.service_name}:"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()  # type: ignore[call-arg]
