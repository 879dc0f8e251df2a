"""Pure renderers: ``PlatformSpec`` (+ addresses and secrets) -> config text or dicts.

Kubernetes components and the local runner call the same functions; the only thing that differs
between the two worlds is *addresses* (upstream hosts and ports, listen ports, file paths), which each
module models explicitly (``GatewayAddresses``, ``ScrapeTargets``...). Every renderer is
deterministic: the same input gives byte-identical output.
"""
