"""Pulumi ComponentResources, one per file; ``infra.platform.build_platform`` wires them together."""
