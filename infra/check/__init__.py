"""``platform check``: strict schema, checkov, reference integrity and lifecycle rules over a stack.

Schema, integrity and lifecycle run in-process while checkov (a separate venv) runs once in a
subprocess.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from infra.check.integrity import Externals, check_integrity
from infra.check.k8s import Manifest
from infra.check.report import Finding, Report, Section, Skipped
from infra.check.sandbox import check_sandboxes
from infra.check.schema import validate_schemas

if TYPE_CHECKING:
    from infra.lifecycle.plan import Plan
    from infra.lifecycle.snapshot import Snapshot
    from infra.spec import PlatformSpec

__all__ = ["Externals", "Finding", "Report", "Section", "Skipped", "externals_for", "run_checks"]


def externals_for(spec: PlatformSpec) -> Externals:
    """Objects a stack references but does not create - declared here, explicitly.

    * the gateway's TLS Secret (``platform:tls.secretName``): cert-manager issues it when
      ``clusterIssuer`` is set, otherwise the operator creates it before ``pulumi up``.
    """
    tls = spec.config.tls
    secrets = {tls.secret_name} if tls.enabled else set()
    return Externals(secrets=frozenset(secrets))


def run_checks(
    stack: str,
    manifests: list[Manifest],
    *,
    kubernetes_version: str,
    externals: Externals,
    root: Path,
    checkov: bool = True,
    snapshot: Snapshot | None = None,
    plan: Plan | None = None,
    allow_replace: tuple[str, ...] = (),
    spec: PlatformSpec | None = None,
) -> Report:
    """Run every check; checkov (if enabled) runs concurrently with the in-process checks.

    The lifecycle rules need the resource graph (*snapshot*); with *plan* (a base to compare with)
    they also refuse replacing a data store or changing a volume claim, except for *allow_replace*.
    With *spec*, also the spec-level policies (sandbox adapters in staging/prod).
    """
    run = None
    if checkov:
        from infra.check.checkov import start_checkov

        run = start_checkov(manifests, root)
    try:
        schema = validate_schemas(manifests, kubernetes_version)
        integrity = check_integrity(manifests, externals)
        if snapshot is not None:
            from infra.check.lifecycle import check_lifecycle

            lifecycle = check_lifecycle(
                snapshot, externals, root=root, plan=plan, allow_replace=allow_replace
            )
        else:
            lifecycle = Section("lifecycle", "Lifecycle", ran=False, note="no resource graph given")
    except BaseException:
        if run is not None:
            run.process.kill()
            run.result_quietly()
        raise
    if run is not None:
        checkov_section = run.result()
    else:
        checkov_section = Section(
            "checkov", "Checkov (framework kubernetes)", ran=False, note="--skip-checkov"
        )
    sections = [schema, checkov_section, integrity, lifecycle]
    if spec is not None:
        sections.append(check_sandboxes(spec))
    return Report(stack, len(manifests), sections)
