"""Defects A6 and A7: rotating a password reaches everything that holds it (the RandomPassword is
replaced, the bootstrap Job runs again, the servers reload, the Deployments roll); a Job that failed is
replaced on the next `up` instead of being awaited again."""

from __future__ import annotations

import pytest

from infra.offline import Rendered
from infra.spec import PlatformSpec, load_spec
from tests.infra.deploy.conftest import find, registration
from tests.infra.deploy.test_boot_time_config import render_spec

PASSWORD = "random:index/randomPassword:RandomPassword"


def rotate(*credentials: str) -> callable:
    def change(spec: PlatformSpec) -> PlatformSpec:
        rotation = {**spec.config.rotation, **dict.fromkeys(credentials, 1)}
        return spec.model_copy(update={"config": spec.config.model_copy(update={"rotation": rotation})})

    return change


def changed_templates(before: Rendered, after: Rendered) -> set[str]:
    """``Kind/name`` of every workload whose pod template differs."""
    result = set()
    for m in after.manifests:
        if "template" not in m.get("spec", {}) and m["kind"] != "CronJob":
            continue
        old = find(before.manifests, m["kind"], m["metadata"]["name"])
        if m["spec"] != old["spec"]:
            result.add(f"{m['kind']}/{m['metadata']['name']}")
    return result


def secret_checksum(rendered: Rendered, name: str) -> str:
    return find(rendered.manifests, "Secret", name)["metadata"]["annotations"]["checksum/content"]


@pytest.fixture(scope="module")
def base() -> Rendered:
    return render_spec("dev", lambda spec: spec)


def test_rotating_a_database_password_reaches_everything_that_holds_it(base) -> None:
    after = render_spec("dev", rotate("postgres/marketplace-svc"))
    password = registration(after, "postgres-marketplace-svc-password")
    assert password.inputs["keepers"] == {"generation": "1"}  # keepers force a new RandomPassword
    assert "keepers" not in registration(base, "postgres-marketplace-svc-password").inputs
    assert secret_checksum(after, "marketplace-svc-db") != secret_checksum(base, "marketplace-svc-db")
    assert changed_templates(base, after) == {
        "Job/postgres-bootstrap",  # a new template replaces the Job: ALTER ROLE runs again
        "Job/marketplace-svc-migrate",
        "Deployment/marketplace-svc",
    }


def test_rotating_a_redis_password_restarts_redis_and_rolls_its_service(base) -> None:
    after = render_spec("dev", rotate("redis/auth-svc"))
    assert changed_templates(base, after) == {"StatefulSet/redis", "Deployment/auth-svc"}


def test_rotating_a_broker_password_restarts_rabbitmq_and_rolls_its_service(base) -> None:
    after = render_spec("dev", rotate("rabbitmq/chat-svc"))
    assert changed_templates(base, after) == {"StatefulSet/rabbitmq", "Deployment/chat-svc"}


def test_rotating_the_superuser_password_resets_it_in_the_server(base) -> None:
    after = render_spec("dev", rotate("postgres/superuser"))
    assert changed_templates(base, after) == {
        "StatefulSet/postgres",  # its postStart hook sets the new password over the local socket
        "Job/postgres-bootstrap",
        "CronJob/postgres-backup",
    }
    hook = find(after.manifests, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    assert "ALTER ROLE" in hook["lifecycle"]["postStart"]["exec"]["command"][2]


def test_rotating_the_jwt_key_rolls_every_service(base) -> None:
    after = render_spec("dev", rotate("jwt/initial"))
    assert changed_templates(base, after) == {f"Deployment/{svc.name}" for svc in load_spec("dev").services}


def test_an_unknown_credential_is_refused() -> None:
    from infra.errors import SpecError
    from infra.spec import load_spec

    config = {**load_spec("dev").config.model_dump(by_alias=True, exclude_none=True)}
    config["rotation"] = {"postgres/nobody": 1}
    with pytest.raises(SpecError) as error:
        load_spec("dev", config=config)
    assert error.value.field == "platform:rotation.postgres/nobody"
    assert "postgres/marketplace-svc" in error.value.hint


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_job_is_replaced_when_unready(stacks, stack) -> None:
    jobs = [m for m in stacks[stack].manifests if m["kind"] == "Job"]
    migrations = {f"{s.name}-migrate" for s in load_spec(stack).services if s.manifest.needs.postgres}
    assert migrations <= {job["metadata"]["name"] for job in jobs}
    assert len(jobs) == len(migrations) + 1  # and the one platform Job
    for job in jobs:
        assert job["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true", job["metadata"]["name"]
