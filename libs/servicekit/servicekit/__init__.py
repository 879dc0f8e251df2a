"""servicekit: the shared runtime of the marketplace services."""
