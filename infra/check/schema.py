"""Strict OpenAPI schema validation of manifests, offline, with kubernetes-validate's bundled schemas.

kubernetes-validate's own ``validate()`` re-reads the 1.2 MB definitions file for every object; this
module uses the same schema files (strict variant: unknown fields are errors) but builds each
validator once, so a whole stack validates in well under a second.

Custom resources kubernetes-validate does not know are validated against their CRD's own models where
a package ships them: cert-manager's ``Certificate`` with ``cloudcoil-models-cert-manager`` (pydantic
models generated from cert-manager's CRDs), turned into a JSON Schema that refuses unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from infra.check.k8s import Manifest, join_path, kind, name
from infra.check.report import Section
from infra.errors import UsageError


def schema_dir(kubernetes_version: str) -> str:
    """The strict schema folder for the newest bundled version not newer than *kubernetes_version*."""
    from kubernetes_validate import utils
    from packaging.version import Version

    wanted = Version(utils.major_minor(kubernetes_version.removeprefix("v")))
    candidates = [v for v in utils.all_versions() if Version(utils.major_minor(v)) <= wanted]
    latest = utils.major_minor(utils.latest_version())
    if not candidates or wanted > Version(latest):
        raise UsageError(
            f"kubernetes-validate has no schemas for Kubernetes {kubernetes_version}",
            hint=f"set platform:kubernetesVersion between {utils.all_versions()[0]} and {latest}",
        )
    return f"v{candidates[-1]}-local-strict"


@lru_cache(maxsize=4)
def _registry(folder: str) -> Any:
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    defs = utils.schema_contents(f"kubernetes-json-schema/{folder}/_definitions.json", folder)
    return Resource.from_contents(defs) @ Registry()


def _strict(schema: Any) -> Any:
    """*schema* with ``additionalProperties: false`` on every object that lists its properties."""
    if isinstance(schema, dict):
        result = {key: _strict(value) for key, value in schema.items()}
        if "properties" in result and "additionalProperties" not in result:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _cert_manager_certificate() -> Any:
    from cloudcoil.models.cert_manager.v1 import Certificate

    return Certificate.model_json_schema(by_alias=True)


#: Custom resources validated from their CRD's models: (apiVersion, kind) -> JSON Schema factory.
CUSTOM_RESOURCES = {("cert-manager.io/v1", "Certificate"): _cert_manager_certificate}


@lru_cache(maxsize=256)
def _validator(folder: str, kind_: str, api_version: str) -> Any | None:
    """A cached Draft 2020-12 validator for one kind, or None when no schema exists for it."""
    import jsonschema
    from kubernetes_validate import utils

    custom = CUSTOM_RESOURCES.get((api_version, kind_))
    if custom is not None:
        return jsonschema.Draft202012Validator(_strict(custom()))
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"kubernetes-json-schema/{folder}/{kind_.lower()}-{api}.json", folder)
    except FileNotFoundError:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry(folder))


def validate_schemas(manifests: Iterable[Manifest], kubernetes_version: str) -> Section:
    """Validate every manifest against the strict schema of its kind; one finding per violation."""
    folder = schema_dir(kubernetes_version)
    section = Section("schema", f"Schema (Kubernetes {kubernetes_version}, strict)")
    for m in manifests:
        api_version = str(m.get("apiVersion", ""))
        validator = _validator(folder, kind(m), api_version) if api_version else None
        if validator is None:
            section.fail(
                kind(m),
                name(m),
                "apiVersion",
                f"no schema for {kind(m)} {api_version or '(no apiVersion)'} in Kubernetes "
                f"{kubernetes_version}; custom resources cannot be validated offline",
            )
            continue
        errors = sorted(validator.iter_errors(m), key=lambda e: [str(p) for p in e.absolute_path])
        for error in errors:
            section.fail(kind(m), name(m), join_path(list(error.absolute_path), m), _message(error))
        if not errors:
            section.passed += 1
    return section


def _message(error: Any) -> str:
    message = str(error.message)
    return message if len(message) <= 300 else message[:297] + "..."
