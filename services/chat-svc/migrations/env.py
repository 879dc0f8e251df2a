"""Alembic environment of chat-svc: servicekit runs it against the POSTGRES_* database."""

from chat_svc.core.config import get_settings
from chat_svc.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, get_settings)
