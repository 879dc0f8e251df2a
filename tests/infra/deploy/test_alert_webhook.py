"""Defect A9: platform:alertWebhookUrl was documented but never read. It is read as a Pulumi secret and
reaches Alertmanager as a file of Secret alertmanager-webhook (``url_file``), never through a ConfigMap."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.components import images
from infra.offline import SECRET_CONFIG_PLACEHOLDERS
from tests.infra.deploy.conftest import find
from tests.infra.render.conftest import require_tool

URL_FILE = "/etc/alertmanager/secrets/url"


def alertmanager_config(rendered) -> dict:
    return yaml.safe_load(
        find(rendered.manifests, "ConfigMap", "alertmanager-config")["data"]["alertmanager.yml"]
    )


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_receivers_read_the_url_from_the_secret_file(stacks, stack) -> None:
    config = alertmanager_config(stacks[stack])
    hooks = [hook for receiver in config["receivers"] for hook in receiver["webhook_configs"]]
    assert len(hooks) == 2
    for hook in hooks:
        assert hook["url_file"] == URL_FILE
        assert "url" not in hook
    secret = find(stacks[stack].manifests, "Secret", "alertmanager-webhook")
    assert secret["stringData"] == {"token": "<redacted>", "url": "<redacted>"}
    pod = find(stacks[stack].manifests, "Deployment", "alertmanager")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[str(Path(URL_FILE).parent)]]["secret"]["secretName"] == "alertmanager-webhook"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_url_never_reaches_a_config_map_or_an_output(stacks, stack) -> None:
    text = json.dumps([stacks[stack].manifests, stacks[stack].outputs])
    assert SECRET_CONFIG_PLACEHOLDERS["alertWebhookUrl"] not in text
    assert (
        "hooks."
        not in find(stacks[stack].manifests, "ConfigMap", "alertmanager-config")["data"]["alertmanager.yml"]
    )


def test_the_image_reads_url_file() -> None:
    """url_file exists since Alertmanager 0.26 and crashed the webhook notifier until 0.28.0 (#3800)."""
    version = images.image("alertmanager").rsplit(":v", 1)[1]
    assert tuple(int(p) for p in version.split(".")[:2]) >= (0, 28)


def test_the_rest_of_the_config_passes_amtool(stacks, tmp_path: Path) -> None:
    """amtool here is Debian 12's 0.25, which predates url_file: everything else of the config is its."""
    config = alertmanager_config(stacks["prod"])
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = "https://hooks.example.com/x"
            del hook["url_file"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [require_tool("amtool"), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
