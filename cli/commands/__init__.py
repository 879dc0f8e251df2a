"""One module per noun; each exposes `app` (a Typer sub-app) or `register(app)` for top-level verbs."""
