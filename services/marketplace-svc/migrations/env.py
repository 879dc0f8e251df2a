"""Alembic environment of marketplace-svc: servicekit runs it against the service's own metadata."""

from marketplace_svc.core.config import get_settings
from marketplace_svc.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, get_settings)
