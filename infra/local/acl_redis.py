"""redis-server with the *rendered* redis.conf and ACL file (``default`` off; admin, exporter, services)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from infra.local.redis_server import RedisServer
from infra.render.redis import ADMIN_USER, render_redis_acl, render_redis_conf
from infra.spec import PlatformSpec


class AclRedisServer(RedisServer):
    """:class:`RedisServer` whose files come from :mod:`infra.render.redis`; probed as ``admin``."""

    def __init__(
        self, base_dir: Path, spec: PlatformSpec, passwords: Mapping[str, str], *, port: int | None = None
    ) -> None:
        super().__init__(base_dir, port=port, password=passwords[ADMIN_USER])
        self.spec = spec
        self.passwords = dict(passwords)
        self.username = ADMIN_USER

    def _prepare(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.acl_path.write_text(render_redis_acl(self.spec, self.passwords))
        self.acl_path.chmod(0o600)
        conf = render_redis_conf(
            self.spec, port=self.port, dir=str(data), aclfile=str(self.acl_path), bind=self.host
        )
        self.config_path.write_text(conf)
