"""A service's whole migrations/env.py with servicekit (the settings come from the test)."""

from servicekit.messaging.tables import add_messaging_tables
from servicekit.migrations import run_migrations
from sqlalchemy import MetaData

metadata = MetaData()
add_messaging_tables(metadata)
run_migrations(metadata)
