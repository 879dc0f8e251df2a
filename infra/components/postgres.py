"""Postgres: one StatefulSet, a database + role + ``<svc>-db`` Secret per service, backups, exporter."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import labels as lbl
from infra.components import images, kube
from infra.spec import PlatformSpec, ServiceSpec

PORT = 5432
EXPORTER_PORT = 9187
SUPERUSER = "postgres"
EXPORTER_ROLE = "postgres_exporter"
DATA_DIR = "/var/lib/postgresql/data"
BACKUP_DIR = "/backups"

SECRETS_DIR = "/secrets"

#: Idempotent SQL run once per role/database with psql variables ``role`` and ``db``; the password
#: comes from the environment (``ROLE_PASSWORD``), so it is never on a command line.
BOOTSTRAP_SQL = r"""
\getenv pw ROLE_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"role";
""".strip()

#: Idempotent SQL for the exporter's monitoring role (variable ``role``, password from the environment).
EXPORTER_SQL = r"""
\getenv pw ROLE_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER PASSWORD :'pw';
GRANT pg_monitor TO :"role";
""".strip()


def db_services(spec: PlatformSpec) -> list[ServiceSpec]:
    """Services that own a database."""
    return [svc for svc in spec.services if svc.manifest.needs.postgres]


def bootstrap_script(
    spec: PlatformSpec, host: str = "postgres", exporter: bool = True, secrets_dir: str = SECRETS_DIR
) -> str:
    """Shell script of the ``postgres-bootstrap`` Job: waits for the server, then runs the SQL per service.

    Passwords are read from files under *secrets_dir* (``superuser``, ``<svc>``, ``exporter``: the
    mounted Secrets) into the environment, never onto a command line or into the script; the SQL is
    idempotent, so the Job can run again after every change (a new service, a rotated password).
    """
    psql = f"psql -v ON_ERROR_STOP=1 -h {shlex.quote(host)} -p {PORT} -U {SUPERUSER} -d postgres"
    lines = [
        "set -eu",
        f'PGPASSWORD="$(cat {secrets_dir}/superuser)"',
        "export PGPASSWORD",
        f"until pg_isready -h {shlex.quote(host)} -p {PORT} -U {SUPERUSER}; do sleep 2; done",
        f"cat > /tmp/bootstrap.sql <<'SQL'\n{BOOTSTRAP_SQL}\nSQL",
        f"cat > /tmp/exporter.sql <<'SQL'\n{EXPORTER_SQL}\nSQL",
    ]
    for svc in db_services(spec):
        db = svc.manifest.needs.postgres.database  # type: ignore[union-attr]
        pw = f'ROLE_PASSWORD="$(cat {secrets_dir}/{svc.name})"'
        lines.append(f"{pw} {psql} -v role={db} -v db={db} -f /tmp/bootstrap.sql")
    if exporter:
        pw = f'ROLE_PASSWORD="$(cat {secrets_dir}/exporter)"'
        lines.append(f"{pw} {psql} -v role={EXPORTER_ROLE} -f /tmp/exporter.sql")
    return "\n".join(lines) + "\n"


def backup_script(
    spec: PlatformSpec,
    host: str = "postgres",
    directory: str = BACKUP_DIR,
    secrets_dir: str = SECRETS_DIR,
    port: int = PORT,
) -> str:
    """Shell script of the ``postgres-backup`` CronJob: ``pg_dump -Fc`` per database, then prune.

    A dump is written to ``*.dump.tmp`` and renamed when complete, so a failed run never leaves a
    truncated ``.dump``; dumps *and* leftover ``*.dump.tmp`` files of failed runs older than
    ``retentionDays`` are deleted (a younger ``.tmp`` may belong to a run still in progress).
    """
    days = spec.config.postgres.backup.retention_days
    lines = [
        "set -eu",
        f'PGPASSWORD="$(cat {secrets_dir}/superuser)"',
        "export PGPASSWORD",
        'stamp="$(date -u +%Y%m%dT%H%M%SZ)"',
    ]
    for svc in db_services(spec):
        db = svc.manifest.needs.postgres.database  # type: ignore[union-attr]
        target = f'{directory}/{db}-"$stamp".dump'
        # Separate commands (not `a && b`) so `set -e` fails the Job when a dump fails.
        lines.append(f"pg_dump -Fc -h {shlex.quote(host)} -p {port} -U {SUPERUSER} -d {db} -f {target}.tmp")
        lines.append(f"mv {target}.tmp {target}")
    lines.append(
        f"find {directory} -type f \\( -name '*.dump' -o -name '*.dump.tmp' \\) "
        f"-mmin +{days * 24 * 60} -delete"
    )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PostgresArgs:
    """Inputs of :class:`Postgres` (sizes, version and backup policy come from ``spec.config.postgres``)."""

    spec: PlatformSpec
    #: Run postgres_exporter (Deployment + Service on 9187) with a pg_monitor role.
    exporter: bool = True
    #: Length of every generated password ([A-Za-z0-9] only, safe in URLs and shells).
    password_length: int = 32


class Postgres(pulumi.ComponentResource):
    """StatefulSet + headless Service, superuser and per-service Secrets, bootstrap Job, backups, exporter."""

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:data:Postgres", name, None, opts)
        spec = args.spec
        cfg = spec.config.postgres
        stack = spec.stack
        child = kube.child(self)
        labels = lbl.labels("postgres", stack, "database")
        selector = lbl.selector_labels("postgres", stack)
        image = images.postgres(cfg.version)

        def password(role: str) -> random.RandomPassword:
            return random.RandomPassword(
                f"{name}-{role}-password", length=args.password_length, special=False, opts=child
            )

        superuser = password("superuser")
        self.superuser_secret = k8s.core.v1.Secret(
            f"{name}-superuser",
            metadata=kube.meta("postgres-superuser", spec, labels),
            type="Opaque",
            string_data={"POSTGRES_USER": SUPERUSER, "POSTGRES_PASSWORD": superuser.result},
            opts=child,
        )
        superuser_file = {
            "secret": {
                "name": "postgres-superuser",
                "items": [{"key": "POSTGRES_PASSWORD", "path": "superuser"}],
            }
        }

        self.service_secrets: dict[str, k8s.core.v1.Secret] = {}
        for svc in db_services(spec):
            db = svc.manifest.needs.postgres.database  # type: ignore[union-attr]
            self.service_secrets[svc.name] = k8s.core.v1.Secret(
                f"{name}-{svc.name}-db",
                metadata=kube.meta(f"{svc.name}-db", spec, lbl.labels(svc.name, stack, "api")),
                type="Opaque",
                string_data={"POSTGRES_USER": db, "POSTGRES_PASSWORD": password(svc.name).result},
                opts=child,
            )
        exporter_secret = None
        if args.exporter:
            exporter_secret = k8s.core.v1.Secret(
                f"{name}-exporter-credentials",
                metadata=kube.meta(
                    "postgres-exporter", spec, lbl.labels("postgres-exporter", stack, "database")
                ),
                type="Opaque",
                string_data={
                    "DATA_SOURCE_USER": EXPORTER_ROLE,
                    "DATA_SOURCE_PASS": password("exporter").result,
                },
                opts=child,
            )

        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=kube.meta("postgres", spec, labels),
            spec={
                "cluster_ip": "None",
                "selector": selector,
                "ports": [{"name": "postgres", "port": PORT, "target_port": "postgres", "protocol": "TCP"}],
            },
            opts=child,
        )
        claim: dict = {
            "metadata": {"name": "data", "labels": labels},
            "spec": {"access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cfg.storage}}},
        }
        if cfg.storage_class:
            claim["spec"]["storage_class_name"] = cfg.storage_class
        ready = kube.exec_probe(["pg_isready", "-h", "127.0.0.1", "-p", str(PORT), "-U", SUPERUSER])
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=kube.meta("postgres", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)),
            spec={
                "service_name": "postgres",
                "replicas": 1,
                "selector": {"match_labels": selector},
                "volume_claim_templates": [claim],
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automount_service_account_token": False,
                        "security_context": kube.pod_security(),
                        "termination_grace_period_seconds": 60,
                        "containers": [
                            {
                                "name": "postgres",
                                "image": image,
                                "image_pull_policy": "Always",
                                "ports": [{"name": "postgres", "container_port": PORT, "protocol": "TCP"}],
                                "env": [
                                    {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
                                    {"name": "POSTGRES_USER", "value": SUPERUSER},
                                    {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/superuser"},
                                ],
                                "resources": kube.resources(cfg.resources),
                                "security_context": kube.container_security(),
                                "startup_probe": {**ready, "period_seconds": 5, "failure_threshold": 60},
                                "liveness_probe": ready,
                                "readiness_probe": {**ready, "period_seconds": 5},
                                "volume_mounts": [
                                    {"name": "data", "mount_path": DATA_DIR},
                                    {"name": "run", "mount_path": "/var/run/postgresql"},
                                    {"name": "tmp", "mount_path": "/tmp"},
                                    {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
                                ],
                            }
                        ],
                        "volumes": [
                            kube.empty_dir("run", "16Mi"),
                            kube.empty_dir("tmp"),
                            {
                                "name": "secrets",
                                "projected": {"sources": [superuser_file], "default_mode": 0o440},
                            },
                        ],
                    },
                },
            },
            opts=kube.child(self, depends_on=[self.superuser_secret]),
        )

        def job_pod(role: str, script: str, sources: list, mounts: list, volumes: list) -> dict:
            role_labels = lbl.labels(f"postgres-{role}", stack, "database")
            return {
                "metadata": {"labels": role_labels},
                "spec": {
                    "restart_policy": "OnFailure",
                    "automount_service_account_token": False,
                    "security_context": kube.pod_security(),
                    "containers": [
                        {
                            "name": role,
                            "image": image,
                            "image_pull_policy": "Always",
                            "command": ["/bin/sh", "-c", script],
                            "env": [{"name": "PGUSER", "value": SUPERUSER}],
                            "resources": kube.resources(kube.SMALL),
                            "security_context": kube.container_security(),
                            "volume_mounts": [
                                {"name": "tmp", "mount_path": "/tmp"},
                                {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
                                *mounts,
                            ],
                        }
                    ],
                    "volumes": [
                        kube.empty_dir("tmp"),
                        {"name": "secrets", "projected": {"sources": sources, "default_mode": 0o440}},
                        *volumes,
                    ],
                },
            }

        bootstrap_sources = [superuser_file]
        for svc in db_services(spec):
            bootstrap_sources.append(
                {
                    "secret": {
                        "name": f"{svc.name}-db",
                        "items": [{"key": "POSTGRES_PASSWORD", "path": svc.name}],
                    }
                }
            )
        if args.exporter:
            bootstrap_sources.append(
                {
                    "secret": {
                        "name": "postgres-exporter",
                        "items": [{"key": "DATA_SOURCE_PASS", "path": "exporter"}],
                    }
                }
            )
        job_skips = kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
        secrets = [
            self.superuser_secret,
            *self.service_secrets.values(),
            *([exporter_secret] if exporter_secret else []),
        ]
        self.bootstrap = k8s.batch.v1.Job(
            f"{name}-bootstrap",
            metadata=kube.meta(
                "postgres-bootstrap", spec, lbl.labels("postgres-bootstrap", stack, "database"), job_skips
            ),
            spec={
                "backoff_limit": 6,
                "active_deadline_seconds": 900,
                "template": job_pod(
                    "bootstrap", bootstrap_script(spec, exporter=args.exporter), bootstrap_sources, [], []
                ),
            },
            opts=kube.child(self, depends_on=[self.statefulset, self.service, *secrets]),
        )

        backup = cfg.backup
        backup_labels = lbl.labels("postgres-backup", stack, "database")
        self.backups_pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-backups",
            metadata=kube.meta("postgres-backups", spec, backup_labels),
            spec={
                "access_modes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": backup.storage}},
                **({"storage_class_name": cfg.storage_class} if cfg.storage_class else {}),
            },
            opts=child,
        )
        self.backup = k8s.batch.v1.CronJob(
            f"{name}-backup",
            metadata=kube.meta("postgres-backup", spec, backup_labels, job_skips),
            spec={
                "schedule": backup.schedule,
                "concurrency_policy": "Forbid",
                "successful_jobs_history_limit": 3,
                "failed_jobs_history_limit": 3,
                "job_template": {
                    "spec": {
                        "backoff_limit": 2,
                        "template": job_pod(
                            "backup",
                            backup_script(spec),
                            [superuser_file],
                            [{"name": "backups", "mount_path": BACKUP_DIR}],
                            [
                                {
                                    "name": "backups",
                                    "persistent_volume_claim": {"claim_name": "postgres-backups"},
                                }
                            ],
                        ),
                    }
                },
            },
            opts=kube.child(self, depends_on=[self.backups_pvc, self.statefulset]),
        )

        clients = [f"{svc.name}" for svc in db_services(spec)] + [
            f"{svc.name}-migrate" for svc in db_services(spec)
        ]
        clients += ["postgres-bootstrap", "postgres-backup"] + (
            ["postgres-exporter"] if args.exporter else []
        )
        self.policy = kube.network_policy(
            f"{name}-netpol",
            "postgres",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[{"from": [kube.peer(c, spec) for c in clients], "ports": kube.ports(PORT)}],
            egress=[],
            opts=child,
        )
        for role in ("bootstrap", "backup"):
            kube.network_policy(
                f"{name}-{role}-netpol",
                f"postgres-{role}",
                spec,
                lbl.labels(f"postgres-{role}", stack, "database"),
                {"match_labels": lbl.selector_labels(f"postgres-{role}", stack)},
                ingress=[],
                egress=[{"to": [kube.peer("postgres", spec)], "ports": kube.ports(PORT)}],
                opts=child,
            )
        if args.exporter:
            self._exporter(name, spec, child)
        self.register_outputs({"service": self.service.metadata.name, "host": "postgres", "port": PORT})

    def dependencies_for(self, svc: ServiceSpec) -> list[pulumi.Resource]:
        """What a workload of *svc* waits for: its credentials and the Job creating its database."""
        if svc.name not in self.service_secrets:
            return []
        return [self.service_secrets[svc.name], self.bootstrap]

    def _exporter(self, name: str, spec: PlatformSpec, child: pulumi.ResourceOptions) -> None:
        stack = spec.stack
        labels = lbl.labels("postgres-exporter", stack, "database")
        selector = lbl.selector_labels("postgres-exporter", stack)
        self.exporter = k8s.apps.v1.Deployment(
            f"{name}-exporter",
            metadata=kube.meta(
                "postgres-exporter",
                spec,
                labels,
                kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST),
            ),
            spec={
                "replicas": 1,
                "selector": {"match_labels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automount_service_account_token": False,
                        "security_context": kube.pod_security(),
                        "containers": [
                            {
                                "name": "exporter",
                                "image": images.image("postgres-exporter"),
                                "image_pull_policy": "Always",
                                "ports": [
                                    {"name": "metrics", "container_port": EXPORTER_PORT, "protocol": "TCP"}
                                ],
                                "env": [
                                    {
                                        "name": "DATA_SOURCE_URI",
                                        "value": f"postgres:{PORT}/postgres?sslmode=disable",
                                    },
                                    {"name": "DATA_SOURCE_USER", "value": EXPORTER_ROLE},
                                    {
                                        "name": "DATA_SOURCE_PASS_FILE",
                                        "value": f"{SECRETS_DIR}/DATA_SOURCE_PASS",
                                    },
                                ],
                                "resources": kube.resources(kube.SMALL),
                                "security_context": kube.container_security(),
                                "liveness_probe": kube.http_probe("/", "metrics"),
                                "readiness_probe": kube.http_probe("/", "metrics"),
                                "volume_mounts": [
                                    {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True}
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "secrets",
                                "secret": {"secret_name": "postgres-exporter", "default_mode": 0o440},
                            }
                        ],
                    },
                },
            },
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-exporter-service",
            metadata=kube.meta("postgres-exporter", spec, labels),
            spec={
                "selector": selector,
                "ports": [
                    {"name": "metrics", "port": EXPORTER_PORT, "target_port": "metrics", "protocol": "TCP"}
                ],
            },
            opts=child,
        )
        kube.network_policy(
            f"{name}-exporter-netpol",
            "postgres-exporter",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[{"from": [kube.peer("prometheus", spec)], "ports": kube.ports(EXPORTER_PORT)}],
            egress=[{"to": [kube.peer("postgres", spec)], "ports": kube.ports(PORT)}],
            opts=child,
        )
