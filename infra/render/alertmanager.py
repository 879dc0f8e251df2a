"""alertmanager.yml: route by severity to webhook receivers, inhibit warnings under a critical.

Secrets never appear in rendered output. In Kubernetes the receiver URL (``platform:alertWebhookUrl``,
a Pulumi secret) is read from a file of a Secret (``url_file``); a URL written into the config (the local
run, and Alertmanager 0.25 of Debian 12, which has no ``url_file``) must be credential-free (enforced: no
userinfo, no query string). The credential is a bearer token read from a file mounted from a Secret
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


def _receiver(name: str, url: str | None, url_file: str | None, credentials_file: str) -> dict[str, Any]:
    target = {"url_file": url_file} if url_file else {"url": _check_url(url or "")}
    return {
        "name": name,
        "webhook_configs": [
            {
                **target,
                "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": credentials_file}},
            }
        ],
    }


def render_alertmanager_config(
    spec: PlatformSpec,
    *,
    credentials_file: str,
    webhook_url: str | None = None,
    webhook_url_file: str | None = None,
    critical_webhook_url: str | None = None,
) -> dict[str, Any]:
    """``alertmanager.yml`` as a dict.

    The receiver URL is either *webhook_url* (checked: no credentials in it) or read by Alertmanager
    from *webhook_url_file* at every notification (``url_file``, Alertmanager >= 0.26; the URL may then
    carry a token, since it stays in a Secret).

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
            _receiver("pager", critical_webhook_url or webhook_url, webhook_url_file, credentials_file),
            _receiver("tickets", webhook_url, webhook_url_file, credentials_file),
        ],
    }
