"""marketplace-svc: listings, search and Redis-cached reads."""
