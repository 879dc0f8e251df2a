"""The deployment's lifecycle, offline: what the Pulumi engine and its providers would do with a change.

* :mod:`infra.lifecycle.rules` - the providers' own rules (pulumi-kubernetes' force-new fields, ConfigMap
  and Secret mutability, delete-before-replace, replaceUnready, await; random's and docker's replacement
  rules), each naming where in the provider's source it comes from.
* :mod:`infra.lifecycle.snapshot` - one render as a resource graph (manifests, dependencies, parents,
  options, Secret digests), JSON-serialisable so a forked render can hand it back.
* :mod:`infra.lifecycle.plan` - two snapshots -> the engine's plan (create / update / replace / delete,
  the field forcing a replacement, rolling workloads and why, hazards). Pure.
"""
