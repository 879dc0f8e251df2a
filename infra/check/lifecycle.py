"""Lifecycle rules: the fourth category of ``platform check``, after schemas, checkov and integrity.

A manifest can be valid and its references whole while ``pulumi up`` still fails: the engine orders,
awaits, updates or replaces each resource by the providers' rules (:mod:`infra.lifecycle.rules`), and
servers read some files only at boot. Each rule here names what would go wrong:

* ``LC-MOUNT``  every non-optional ConfigMap/Secret a pod reads is created by the program (or issued
  from a resource of it, or declared external) and the workload waits for what creates it;
* ``LC-UPSTREAM``  every host the gateway proxies to is a Service the gateway waits for (nginx resolves
  upstream hosts at start), unless resolved at request time;
* ``LC-CHECKSUM``  every ConfigMap/Secret a pod reads feeds its pod template's checksum
  (``checksum/<name>``, equal to the object's own), so a change restarts what reads it at boot;
* ``LC-JOB``  every Job is replaced when unready (``pulumi.com/replaceUnready``);
* ``LC-QUOTA``  the peak of a rolling update of every workload fits the namespace's ResourceQuota;
* ``LC-IMAGE``  every service's build context is cut to its inputs (``Dockerfile.dockerignore``);
* with a base (``platform check --base REF``): ``LC-STORE`` a data store's StatefulSet is not replaced
  and ``LC-CLAIM`` no volume claim changes (docs/runbooks.md, "Growing a data store's volume").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from infra.check.integrity import BUILTIN_CONFIG_MAPS, Externals
from infra.check.report import Section
from infra.lifecycle import capacity, rules
from infra.lifecycle.plan import READ_AT_USE, Plan, reads
from infra.lifecycle.snapshot import Resource, Snapshot

RUNBOOK = "docs/runbooks.md#growing-a-data-stores-volume"
CHECKSUM_PREFIX = "checksum/"
CONTENT_CHECKSUM = "checksum/content"
EXTERNAL = "external"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
_UPSTREAM = re.compile(r"upstream\s+\S+\s*\{(?P<body>[^}]*)\}", re.DOTALL)
_SERVER = re.compile(r"^\s*server\s+(?P<host>[^\s:;]+)(?::\d+)?(?P<params>[^;]*);", re.MULTILINE)
_PROXY_PASS = re.compile(r"^\s*proxy_pass\s+https?://(?P<host>[^\s:/;$]+)", re.MULTILINE)


def _optional_refs(resource: Resource) -> set[tuple[str, str]]:
    """References marked ``optional: true`` (a pod starts without them)."""
    text_refs: set[tuple[str, str]] = set()

    def walk(node: object, kind: str | None = None) -> None:
        if isinstance(node, dict):
            if node.get("optional") is True:
                name = node.get("name") or node.get("secretName")
                if name and kind:
                    text_refs.add((kind, str(name)))
            for key, value in node.items():
                sub = {"configMap": "ConfigMap", "configMapRef": "ConfigMap", "configMapKeyRef": "ConfigMap"}
                sub |= {"secret": "Secret", "secretRef": "Secret", "secretKeyRef": "Secret"}
                walk(value, sub.get(key, kind))
        elif isinstance(node, list):
            for item in node:
                walk(item, kind)

    walk((resource.manifest or {}).get("spec"))
    return text_refs


class _Lifecycle:
    def __init__(self, snapshot: Snapshot, externals: Externals) -> None:
        self.snapshot = snapshot
        self.externals = externals
        self.section = Section(
            "lifecycle", f"Lifecycle ({rules.PROVIDER_VERSIONS['kubernetes'].split(' (')[0]} rules)"
        )
        self.workloads = [r for r in snapshot.kubernetes() if r.kind in WORKLOAD_KINDS]
        self._waits: dict[str, set[str]] = {}

    def waits_for(self, resource: Resource) -> set[str]:
        if resource.name not in self._waits:
            self._waits[resource.name] = self.snapshot.waits_for(resource.name)
        return self._waits[resource.name]

    def expect(self, ok: bool, resource: Resource, path: str, message: str, check: str) -> None:
        if ok:
            self.section.passed += 1
        else:
            self.section.fail(resource.kind, resource.object_name, path, message, check)

    # ------------------------------------------------------------ LC-MOUNT and LC-CHECKSUM
    def mounts(self) -> None:
        for workload in self.workloads:
            optional = _optional_refs(workload)
            annotations_path = "spec.template.metadata.annotations"
            if workload.kind == "CronJob":
                annotations_path = "spec.jobTemplate.spec.template.metadata.annotations"
            for (kind, name), checksum in sorted(reads(workload).items()):
                if (kind, name) in optional or (kind == "ConfigMap" and name in BUILTIN_CONFIG_MAPS):
                    continue
                external = name in (
                    self.externals.secrets if kind == "Secret" else self.externals.config_maps
                )
                producers = self.snapshot.producers(kind, name)
                if not producers and external:
                    self.expect(
                        checksum == EXTERNAL,
                        workload,
                        f"{annotations_path}.checksum/{name}",
                        f"reads {kind} {name}, created outside the program: mark it "
                        f"'checksum/{name}: {EXTERNAL}' (its changes need a manual restart)",
                        "LC-CHECKSUM",
                    )
                    continue
                waited = bool(producers) and any(p.name in self.waits_for(workload) for p in producers)
                self.expect(
                    waited,
                    workload,
                    f"{kind}/{name}",
                    f"reads {kind} {name}, which "
                    + ("no resource of the program creates" if not producers else "it does not wait for")
                    + ": its pods can start before it exists",
                    "LC-MOUNT",
                )
                if producers:
                    self._checksum(workload, annotations_path, kind, name, checksum, producers[0])

    def _checksum(
        self, workload: Resource, path: str, kind: str, name: str, checksum: str | None, producer: Resource
    ) -> None:
        where = f"{path}.checksum/{name}"
        if checksum is None:
            self.expect(
                False,
                workload,
                where,
                f"reads {kind} {name} but its pod template has no checksum of "
                "it: a change would not restart what reads it at boot",
                "LC-CHECKSUM",
            )
            return
        if checksum == READ_AT_USE:
            self.expect(True, workload, where, "", "LC-CHECKSUM")
            return
        manifest = producer.manifest or {}
        if producer.kind == "ConfigMap":
            expected = rules.checksum(manifest.get("data") or {})
        elif producer.kind == "Certificate":
            expected = rules.checksum(manifest.get("spec") or {})
        else:
            expected = ((manifest.get("metadata") or {}).get("annotations") or {}).get(CONTENT_CHECKSUM)
        self.expect(
            checksum == expected,
            workload,
            where,
            f"the checksum of {kind} {name} is not that of its content: a change would not restart the pods",
            "LC-CHECKSUM",
        )

    # ------------------------------------------------------------ LC-UPSTREAM
    def upstreams(self) -> None:
        for config in (r for r in self.snapshot.kubernetes() if r.kind == "ConfigMap"):
            for key, text in ((config.manifest or {}).get("data") or {}).items():
                if not key.endswith(".conf") or "proxy_pass" not in str(text):
                    continue
                hosts = self._start_time_hosts(str(text))
                readers = [w for w in self.workloads if ("ConfigMap", config.object_name) in reads(w)]
                for workload in readers:
                    for host in sorted(hosts):
                        service = self._service_of(host, workload)
                        ok = service is not None and service.name in self.waits_for(workload)
                        self.expect(
                            ok,
                            workload,
                            f"ConfigMap/{config.object_name}[{key}]",
                            f"proxies to {host}, which nginx resolves at start: "
                            + (
                                "no Service of the stack is called so"
                                if service is None
                                else f"it does not wait for {service.ref}"
                            )
                            + " (it would exit with 'host not found')",
                            "LC-UPSTREAM",
                        )

    @staticmethod
    def _start_time_hosts(conf: str) -> set[str]:
        hosts = set()
        names = set()
        for block in _UPSTREAM.finditer(conf):
            names.add(conf[block.start() :].split()[1])
            for server in _SERVER.finditer(block.group("body")):
                if "resolve" not in server.group("params").split():
                    hosts.add(server.group("host"))
        for proxy in _PROXY_PASS.finditer(conf):
            if proxy.group("host") not in names:
                hosts.add(proxy.group("host"))
        return {h for h in hosts if not re.fullmatch(r"[0-9.]+|localhost|\[.*\]", h)}

    def _service_of(self, host: str, workload: Resource) -> Resource | None:
        labels = host.split(".")
        namespace = (
            labels[1] if len(labels) > 1 else (workload.manifest or {}).get("metadata", {}).get("namespace")
        )
        service = self.snapshot.find("Service", labels[0])
        if service is None or (service.manifest or {}).get("metadata", {}).get("namespace") != namespace:
            return None
        return service

    # ------------------------------------------------------------ LC-JOB
    def jobs(self) -> None:
        for job in (w for w in self.workloads if w.kind == "Job"):
            self.expect(
                rules.replaced_when_unready(job.manifest or {}),
                job,
                f"metadata.annotations[{rules.REPLACE_UNREADY}]",
                "a Job that failed would only be updated and awaited again on every later up: "
                f'annotate it {rules.REPLACE_UNREADY}: "true"',
                "LC-JOB",
            )

    # ------------------------------------------------------------ LC-QUOTA
    def quota(self) -> None:
        for peak in capacity.peaks(self.snapshot.manifests()):
            quota = self.snapshot.find(
                "ResourceQuota",
                next(
                    (
                        r.object_name
                        for r in self.snapshot.kubernetes()
                        if r.kind == "ResourceQuota"
                        and (r.manifest or {}).get("metadata", {}).get("namespace") == peak.namespace
                    ),
                    "",
                ),
            )
            assert quota is not None
            for demand in peak.demands:
                if demand.kind == "DaemonSet":
                    self.expect(
                        False,
                        quota,
                        "spec.hard",
                        f"DaemonSet/{demand.name} runs one pod per node in "
                        "this namespace: its share of the quota cannot be computed",
                        "LC-QUOTA",
                    )
            for resource in capacity.RESOURCES:
                if resource not in peak.hard:
                    continue
                need, hard = peak.need(resource), peak.hard[resource]
                self.expect(
                    need <= hard,
                    quota,
                    f"spec.hard[{resource}]",
                    f"a rolling update of every workload needs {resource} {capacity.show(resource, need)} "
                    f"(replicas or HPA maximum + surge, every Job, a CronJob run), above the quota's "
                    f"{capacity.show(resource, hard)}: surge pods would be refused and the rollout stall; "
                    f"raise platform:quota",
                    "LC-QUOTA",
                )

    # ------------------------------------------------------------ LC-IMAGE
    def images(self, root: Path) -> None:
        from infra.components.image import dockerignore_text, web_dockerignore_text

        for image in (r for r in self.snapshot.resources.values() if r.type == rules.DOCKER_IMAGE):
            build = (image.inputs or {}).get("build") or {}
            dockerfile = str(build.get("dockerfile", ""))
            if not dockerfile:
                continue
            context = str(build.get("context", "."))
            if context != ".":
                # The web app: its own folder is the context, cut by its .dockerignore.
                ignore = root / context / ".dockerignore"
                text = ignore.read_text(encoding="utf-8") if ignore.is_file() else None
                if text == web_dockerignore_text():
                    self.section.passed += 1
                else:
                    self.section.fail(
                        "File",
                        f"{context}/.dockerignore",
                        "",
                        ("is missing" if text is None else "differs from the generated one")
                        + ": node_modules and .next would reach the build context (and its hash); "
                        "write infra.components.image.web_dockerignore_text() there",
                        "LC-IMAGE",
                    )
                continue
            service = Path(dockerfile).parent.name
            ignore = root / f"{dockerfile}.dockerignore"
            text = ignore.read_text(encoding="utf-8") if ignore.is_file() else None
            if text == dockerignore_text(service):
                self.section.passed += 1
            else:
                self.section.fail(
                    "File",
                    f"{dockerfile}.dockerignore",
                    "",
                    ("is missing" if text is None else "differs from the generated one")
                    + ": the build context (the repository root) would reach beyond the service and "
                    "libs/servicekit, and any change anywhere would rebuild the image; copy "
                    "services/<another>/Dockerfile.dockerignore with this service's name",
                    "LC-IMAGE",
                )

    # ------------------------------------------------------------ LC-STORE / LC-CLAIM (with a base)
    def changes(self, plan: Plan, allow: Iterable[str]) -> None:
        allowed = set(allow)
        checked = 0
        for hazard in plan.hazards:
            if hazard.kind not in ("data-store-replaced", "volume-claim-change"):
                continue
            checked += 1
            kind, _, name = hazard.ref.partition("/")
            check = "LC-STORE" if hazard.kind == "data-store-replaced" else "LC-CLAIM"
            if hazard.ref in allowed:
                self.section.note = (self.section.note + "; " if self.section.note else "") + (
                    f"{hazard.ref}: {hazard.kind} allowed (--allow-replace)"
                )
                self.section.passed += 1
                continue
            self.section.fail(
                kind,
                name,
                hazard.field,
                f"{hazard.message} (compared with {plan.base}); follow {RUNBOOK}",
                check,
            )
        self.section.passed += 0 if checked else 1


def check_lifecycle(
    snapshot: Snapshot,
    externals: Externals = Externals(),
    *,
    root: Path | None = None,
    plan: Plan | None = None,
    allow_replace: Iterable[str] = (),
) -> Section:
    """Every lifecycle rule over one render (and, with *plan*, the change from a base)."""
    checker = _Lifecycle(snapshot, externals)
    checker.mounts()
    checker.upstreams()
    checker.jobs()
    checker.quota()
    if root is not None:
        checker.images(root)
    if plan is not None:
        checker.changes(plan, allow_replace)
    return checker.section
