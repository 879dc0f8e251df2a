"""alertmanager.yml: route by severity to webhook receivers, inhibit warnings under a critical.

Secrets never appear in rendered output. Alertmanager 0.25 (Debian 12, what the tests validate with)
has no ``url_file`` for webhooks, so the receiver URL must be credential-free (enforced: no userinfo,
no query string) and the credential is a bearer token read from a file mounted from a Secret
(``http_config.authorization.credentials_file``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from infra.errors import UsageError
from infra.spec import PlatformSpec

GROUP_BY = ["alertname", "service"]


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"webhook URL '{url}' is not an http(s) URL", hint="use e.g. https://hooks.example.com/x"
        )
    if parts.username or parts.password or parts.query:
        raise UsageError(
            "webhook URL carries credentials (userinfo or query string)",
            hint="put the token in the file passed as credentials_file and keep the URL plain",
        )
    return url


def _receiver(name: str, url: str, credentials_file: str) -> dict[str, Any]:
    return {
        "name": name,
        "webhook_configs": [
            {
                "url": _check_url(url),
                "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": credentials_file}},
            }
        ],
    }


def render_alertmanager_config(
    spec: PlatformSpec,
    *,
    webhook_url: str,
    credentials_file: str,
    critical_webhook_url: str | None = None,
) -> dict[str, Any]:
    """``alertmanager.yml`` as a dict.

    ``critical`` alerts go to the ``pager`` receiver (*critical_webhook_url*, defaulting to
    *webhook_url*) and repeat hourly; everything else goes to ``tickets`` and repeats every 12h.
    A firing ``critical`` alert inhibits ``warning`` alerts of the same service. *spec* is taken for
    symmetry with the other renderers (the stack reaches notifications via Prometheus' external labels).
    """
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "tickets",
            "group_by": GROUP_BY,
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": [
                {
                    "receiver": "pager",
                    "matchers": ['severity="critical"'],
                    "group_wait": "10s",
                    "repeat_interval": "1h",
                },
                {"receiver": "tickets", "matchers": ['severity="warning"']},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["service"],
            }
        ],
        "receivers": [
            _receiver("pager", critical_webhook_url or webhook_url, credentials_file),
            _receiver("tickets", webhook_url, credentials_file),
        ],
    }
