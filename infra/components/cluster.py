"""The stack's Kubernetes provider: which cluster, and how the provider updates ConfigMaps and Secrets.

Rules taken from pulumi-kubernetes' provider (provider/pkg/provider/diff.go, ``forceNewProperties``;
SDK pinned at 4.34.2, see :mod:`infra.lifecycle.rules`): with the provider's defaults a change of a
ConfigMap's ``data``/``binaryData`` or a Secret's ``data``/``stringData`` *replaces* the object, and a
fixed ``metadata.name`` makes that a delete-before-replace, so pods starting in the gap cannot mount
it. This provider turns on ``enableConfigMapMutable`` and ``enableSecretMutable``: both are updated in
place, and the pod-template checksums roll whatever reads them at boot (docs/adr/0004).
"""

from __future__ import annotations

import base64
import json

import pulumi
import pulumi_kubernetes as k8s

from infra import labels as lbl
from infra.components import kube
from infra.spec import PlatformSpec

#: Logical name of the explicit provider every Kubernetes resource of the program uses.
PROVIDER_NAME = "kubernetes"


def kubernetes_provider(spec: PlatformSpec) -> k8s.Provider:
    """The one provider of the stack: its cluster (``platform:cluster``), mutable ConfigMaps/Secrets."""
    cluster = spec.config.cluster
    return k8s.Provider(
        PROVIDER_NAME,
        context=cluster.context,
        kubeconfig=cluster.kubeconfig,
        enable_config_map_mutable=True,
        enable_secret_mutable=True,
        opts=pulumi.ResourceOptions(),
    )


def image_pull_secret(spec: PlatformSpec, opts: pulumi.ResourceOptions) -> kube.Source | None:
    """Secret ``registry-pull`` (``kubernetes.io/dockerconfigjson``) for ``platform:registry``, when the
    stack names a ``registryUsername``; the password is the Pulumi secret ``platform:registryPassword``.

    Every pod lists it in ``imagePullSecrets`` (:func:`infra.components.kube.pod_template`); the kubelet
    reads it at each pull, so a new password needs no restart.
    """
    username = spec.config.registry_username
    if not username:
        return None
    host = spec.config.registry.split("/", 1)[0]
    password = pulumi.Config("platform").require_secret("registryPassword")

    def docker_config(secret: str) -> str:
        auth = base64.b64encode(f"{username}:{secret}".encode()).decode()
        return json.dumps({"auths": {host: {"username": username, "password": secret, "auth": auth}}})

    source = kube.secret(
        "registry-pull",
        kube.PULL_SECRET,
        spec,
        lbl.labels("platform", spec.stack, "platform"),
        {".dockerconfigjson": password.apply(docker_config)},
        version=f"host={host};user={username}",
        opts=opts,
        type_="kubernetes.io/dockerconfigjson",
    )
    return source.as_read_at_use()
