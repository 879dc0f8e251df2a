"""Postgres: one StatefulSet, a database + role + ``<svc>-db`` Secret per service, backups, exporter."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import credentials
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


#: Sets the superuser's password from its mounted file at every start (``postStart``), over the local
#: socket (trusted by the image's pg_hba.conf): the image applies ``POSTGRES_PASSWORD_FILE`` only when it
#: initialises an empty data directory, so a rotated superuser password would otherwise never reach
#: the server (and every Job that logs in with it would fail).
SUPERUSER_SYNC_SQL = r"""
\getenv pw ROLE_PASSWORD
ALTER ROLE :"role" WITH PASSWORD :'pw';
""".strip()


def superuser_sync_script(
    socket_dir: str = "/var/run/postgresql",
    port: int = PORT,
    secrets_dir: str = SECRETS_DIR,
    role: str = SUPERUSER,
) -> str:
    """Shell of the postStart hook: wait for the server's socket, then set *role*'s password from its file."""
    return "\n".join(
        [
            "set -eu",
            f"until pg_isready -q -h {socket_dir} -p {port}; do sleep 1; done",
            f'ROLE_PASSWORD="$(cat {secrets_dir}/superuser)" psql -q -v ON_ERROR_STOP=1 '
            f"-h {socket_dir} -p {port} -U {role} -d postgres -v role={role} <<'SQL'",
            SUPERUSER_SYNC_SQL,
            "SQL",
            "",
        ]
    )


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


def _file(secret: str, key: str, path: str) -> dict:
    """A projected-volume source: one key of a Secret as one file."""
    return {"secret": {"name": secret, "items": [{"key": key, "path": path}]}}


class Postgres(pulumi.ComponentResource):
    """StatefulSet + headless Service, superuser and per-service Secrets, bootstrap Job, backups, exporter.

    Built in named parts: credentials, server, bootstrap, backups, policies, exporter.
    """

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:data:Postgres", name, None, opts)
        self._name, self._args, self._spec = name, args, args.spec
        self._labels = lbl.labels("postgres", args.spec.stack, "database")
        self._image = images.postgres(args.spec.config.postgres.version)
        self._credentials()
        self._server()
        self._bootstrap()
        self._backups()
        self._policies()
        if args.exporter:
            self._exporter()
        self.register_outputs({"service": self.service.metadata.name, "host": "postgres", "port": PORT})

    def sources_for(self, svc: ServiceSpec) -> list[kube.Source]:
        """The Secret a workload of *svc* reads (``<svc>-db``), if it owns a database."""
        return [self.service_secrets[svc.name]] if svc.name in self.service_secrets else []

    def dependencies_for(self, svc: ServiceSpec) -> list[pulumi.Resource]:
        """What a workload of *svc* waits for besides its Secret: the Job creating its database."""
        return [self.bootstrap] if svc.name in self.service_secrets else []

    # ------------------------------------------------------------------ credentials
    def _credentials(self) -> None:
        """Secrets ``postgres-superuser``, ``<svc>-db`` per database, ``postgres-exporter``."""
        spec, name, child = self._spec, self._name, kube.child(self)

        def password(credential: str, role: str) -> pulumi.Output[str]:
            return kube.password(
                spec, credential, f"{name}-{role}-password", child, self._args.password_length
            ).result

        self.superuser = kube.secret(
            f"{name}-superuser",
            "postgres-superuser",
            spec,
            self._labels,
            {"POSTGRES_USER": SUPERUSER, "POSTGRES_PASSWORD": password("postgres/superuser", "superuser")},
            version=f"user={SUPERUSER};" + credentials.version(spec, "postgres/superuser"),
            opts=child,
        )
        self.superuser_secret = self.superuser.resource
        self.service_secrets: dict[str, kube.Source] = {}
        for svc in db_services(spec):
            db = svc.manifest.needs.postgres.database  # type: ignore[union-attr]
            self.service_secrets[svc.name] = kube.secret(
                f"{name}-{svc.name}-db",
                f"{svc.name}-db",
                spec,
                lbl.labels(svc.name, spec.stack, "api"),
                {"POSTGRES_USER": db, "POSTGRES_PASSWORD": password(f"postgres/{svc.name}", svc.name)},
                version=f"user={db};" + credentials.version(spec, f"postgres/{svc.name}"),
                opts=child,
            )
        self.exporter_secret = None
        if self._args.exporter:
            self.exporter_secret = kube.secret(
                f"{name}-exporter-credentials",
                "postgres-exporter",
                spec,
                lbl.labels("postgres-exporter", spec.stack, "database"),
                {
                    "DATA_SOURCE_USER": EXPORTER_ROLE,
                    "DATA_SOURCE_PASS": password("postgres/exporter", "exporter"),
                },
                version=f"user={EXPORTER_ROLE};" + credentials.version(spec, "postgres/exporter"),
                opts=child,
            )

    # ------------------------------------------------------------------ server
    def _server(self) -> None:
        """Headless Service ``postgres`` and the StatefulSet (one replica, a volume claim template)."""
        spec, cfg, child = self._spec, self._spec.config.postgres, kube.child(self)
        selector = lbl.selector_labels("postgres", spec.stack)
        self.service = k8s.core.v1.Service(
            f"{self._name}-service",
            metadata=kube.meta("postgres", spec, self._labels),
            spec={
                "cluster_ip": "None",
                "selector": selector,
                "ports": [{"name": "postgres", "port": PORT, "target_port": "postgres", "protocol": "TCP"}],
            },
            opts=child,
        )
        claim: dict = {
            "metadata": {"name": "data", "labels": self._labels},
            "spec": {"access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cfg.storage}}},
        }
        if cfg.storage_class:
            claim["spec"]["storage_class_name"] = cfg.storage_class
        ready = kube.exec_probe(["pg_isready", "-h", "127.0.0.1", "-p", str(PORT), "-U", SUPERUSER])
        container = kube.container(
            "postgres",
            self._image,
            cfg.resources,
            ports=[{"name": "postgres", "container_port": PORT, "protocol": "TCP"}],
            env=[
                {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
                {"name": "POSTGRES_USER", "value": SUPERUSER},
                {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/superuser"},
            ],
            startup_probe={**ready, "period_seconds": 5, "failure_threshold": 60},
            liveness_probe=ready,
            readiness_probe={**ready, "period_seconds": 5},
            lifecycle={"post_start": {"exec_": {"command": ["/bin/sh", "-c", superuser_sync_script()]}}},
            mounts=[
                {"name": "data", "mount_path": DATA_DIR},
                {"name": "run", "mount_path": "/var/run/postgresql"},
                {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
            ],
        )
        pod = kube.pod_template(
            spec,
            self._labels,
            [container],
            sources=[self.superuser],
            volumes=[
                kube.empty_dir("run", "16Mi"),
                {
                    "name": "secrets",
                    "projected": {
                        "sources": [_file("postgres-superuser", "POSTGRES_PASSWORD", "superuser")],
                        "default_mode": 0o440,
                    },
                },
            ],
            termination_grace_period_seconds=60,
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            f"{self._name}-statefulset",
            metadata=kube.meta(
                "postgres", spec, self._labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
            ),
            spec={
                "service_name": "postgres",
                "replicas": 1,
                "selector": {"match_labels": selector},
                "volume_claim_templates": [claim],
                "template": pod.template,
            },
            opts=kube.child(self, depends_on=[*pod.depends_on, self.service]),
        )

    def _job_pod(
        self, role: str, script: str, files: list, sources: list[kube.Source], mounts=(), volumes=()
    ) -> kube.PodTemplate:
        """A pod of the bootstrap Job or the backup CronJob: the postgres image running *script*."""
        container = kube.container(
            role,
            self._image,
            kube.SMALL,
            command=["/bin/sh", "-c", script],
            env=[{"name": "PGUSER", "value": SUPERUSER}],
            mounts=[{"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True}, *mounts],
        )
        return kube.pod_template(
            self._spec,
            lbl.labels(f"postgres-{role}", self._spec.stack, "database"),
            [container],
            sources=sources,
            volumes=[{"name": "secrets", "projected": {"sources": files, "default_mode": 0o440}}, *volumes],
            restart_policy="OnFailure",
        )

    # ------------------------------------------------------------------ bootstrap
    def _bootstrap(self) -> None:
        """``postgres-bootstrap``: every role and database, idempotently, replaced whenever it changes.

        Its pod template holds the script (the list of databases) and the checksum of every credential
        it applies: a new service or a rotated password replaces the Job (a Job's template is
        immutable) and it runs again; one that failed is replaced on the next ``up`` (replaceUnready).
        """
        spec = self._spec
        files = [_file("postgres-superuser", "POSTGRES_PASSWORD", "superuser")]
        files += [_file(f"{svc.name}-db", "POSTGRES_PASSWORD", svc.name) for svc in db_services(spec)]
        sources = [self.superuser, *self.service_secrets.values()]
        if self.exporter_secret is not None:
            files.append(_file("postgres-exporter", "DATA_SOURCE_PASS", "exporter"))
            sources.append(self.exporter_secret)
        pod = self._job_pod("bootstrap", bootstrap_script(spec, exporter=self._args.exporter), files, sources)
        annotations = {**kube.REPLACE_UNREADY, **kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)}
        self.bootstrap = k8s.batch.v1.Job(
            f"{self._name}-bootstrap",
            metadata=kube.meta(
                "postgres-bootstrap",
                spec,
                lbl.labels("postgres-bootstrap", spec.stack, "database"),
                annotations,
            ),
            spec={"backoff_limit": 6, "active_deadline_seconds": 900, "template": pod.template},
            opts=kube.child(self, depends_on=[self.statefulset, self.service, *pod.depends_on]),
        )

    # ------------------------------------------------------------------ backups
    def _backups(self) -> None:
        """The ``postgres-backups`` claim and the ``postgres-backup`` CronJob (pg_dump per database)."""
        spec, cfg, child = self._spec, self._spec.config.postgres, kube.child(self)
        backup = cfg.backup
        backup_labels = lbl.labels("postgres-backup", spec.stack, "database")
        self.backups_pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{self._name}-backups",
            metadata=kube.meta("postgres-backups", spec, backup_labels),
            spec={
                "access_modes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": backup.storage}},
                **({"storage_class_name": cfg.storage_class} if cfg.storage_class else {}),
            },
            opts=child,
        )
        pod = self._job_pod(
            "backup",
            backup_script(spec),
            [_file("postgres-superuser", "POSTGRES_PASSWORD", "superuser")],
            [self.superuser],
            [{"name": "backups", "mount_path": BACKUP_DIR}],
            [{"name": "backups", "persistent_volume_claim": {"claim_name": "postgres-backups"}}],
        )
        self.backup = k8s.batch.v1.CronJob(
            f"{self._name}-backup",
            metadata=kube.meta(
                "postgres-backup", spec, backup_labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
            ),
            spec={
                "schedule": backup.schedule,
                "concurrency_policy": "Forbid",
                "successful_jobs_history_limit": 3,
                "failed_jobs_history_limit": 3,
                "job_template": {"spec": {"backoff_limit": 2, "template": pod.template}},
            },
            opts=kube.child(self, depends_on=[self.backups_pvc, self.statefulset, *pod.depends_on]),
        )

    # ------------------------------------------------------------------ policies
    def _policies(self) -> None:
        """The server accepts its clients only; the bootstrap and backup pods reach the server only."""
        spec, child = self._spec, kube.child(self)
        services = db_services(spec)
        clients = [svc.name for svc in services] + [f"{svc.name}-migrate" for svc in services]
        clients += ["postgres-bootstrap", "postgres-backup"]
        clients += ["postgres-exporter"] if self._args.exporter else []
        self.policy = kube.network_policy(
            f"{self._name}-netpol",
            "postgres",
            spec,
            self._labels,
            {"match_labels": lbl.selector_labels("postgres", spec.stack)},
            ingress=[{"from": [kube.peer(c, spec) for c in clients], "ports": kube.ports(PORT)}],
            egress=[],
            opts=child,
        )
        for role in ("bootstrap", "backup"):
            kube.network_policy(
                f"{self._name}-{role}-netpol",
                f"postgres-{role}",
                spec,
                lbl.labels(f"postgres-{role}", spec.stack, "database"),
                {"match_labels": lbl.selector_labels(f"postgres-{role}", spec.stack)},
                ingress=[],
                egress=[{"to": [kube.peer("postgres", spec)], "ports": kube.ports(PORT)}],
                opts=child,
            )

    # ------------------------------------------------------------------ exporter
    def _exporter(self) -> None:
        """postgres_exporter: Deployment + Service on 9187, logging in as the pg_monitor role."""
        spec, child = self._spec, kube.child(self)
        labels = lbl.labels("postgres-exporter", spec.stack, "database")
        selector = lbl.selector_labels("postgres-exporter", spec.stack)
        container = kube.container(
            "exporter",
            images.image("postgres-exporter"),
            kube.SMALL,
            ports=[{"name": "metrics", "container_port": EXPORTER_PORT, "protocol": "TCP"}],
            env=[
                {"name": "DATA_SOURCE_URI", "value": f"postgres:{PORT}/postgres?sslmode=disable"},
                {"name": "DATA_SOURCE_USER", "value": EXPORTER_ROLE},
                {"name": "DATA_SOURCE_PASS_FILE", "value": f"{SECRETS_DIR}/DATA_SOURCE_PASS"},
            ],
            liveness_probe=kube.http_probe("/", "metrics"),
            readiness_probe=kube.http_probe("/", "metrics"),
            mounts=[{"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True}],
        )
        assert self.exporter_secret is not None
        pod = kube.pod_template(
            spec,
            labels,
            [container],
            sources=[self.exporter_secret],
            volumes=[
                {"name": "secrets", "secret": {"secret_name": "postgres-exporter", "default_mode": 0o440}}
            ],
        )
        self.exporter = k8s.apps.v1.Deployment(
            f"{self._name}-exporter",
            metadata=kube.meta(
                "postgres-exporter", spec, labels, kube.checkov_skips(CKV_K8S_43=kube.SKIP_DIGEST)
            ),
            spec={"replicas": 1, "selector": {"match_labels": selector}, "template": pod.template},
            opts=kube.child(self, depends_on=list(pod.depends_on)),
        )
        k8s.core.v1.Service(
            f"{self._name}-exporter-service",
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
            f"{self._name}-exporter-netpol",
            "postgres-exporter",
            spec,
            labels,
            {"match_labels": selector},
            ingress=[{"from": [kube.peer("prometheus", spec)], "ports": kube.ports(EXPORTER_PORT)}],
            egress=[{"to": [kube.peer("postgres", spec)], "ports": kube.ports(PORT)}],
            opts=child,
        )
