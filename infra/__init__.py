"""The marketplace platform: spec, renderers, Pulumi components, offline engine, local runner."""
