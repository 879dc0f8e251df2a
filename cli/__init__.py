"""The `platform` command-line interface."""
