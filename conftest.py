"""Repo-wide pytest setup: real local servers (postgres_server, redis_server, rabbitmq_server, ...)."""

pytest_plugins = ["infra.local.pytest_plugin"]
