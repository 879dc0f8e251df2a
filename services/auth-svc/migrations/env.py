"""Alembic environment of auth-svc: servicekit runs it against the service's own metadata."""

from auth_svc.core.config import get_settings
from auth_svc.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, get_settings)
