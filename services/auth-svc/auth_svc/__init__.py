"""auth-svc: accounts, login and JWT access/refresh tokens."""
