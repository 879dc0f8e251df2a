"""Alembic environment of payment-svc: servicekit runs it against the POSTGRES_* database."""

from payment_svc.core.config import get_settings
from payment_svc.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, get_settings)
