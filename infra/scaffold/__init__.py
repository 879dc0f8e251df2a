"""The scaffolder behind ``platform new-service`` and ``platform services``.

Pipeline (after copier): load ``template.yaml`` (validated) -> resolve answers (flags, TTY prompts,
defaults) -> render every file in memory with ``StrictUndefined`` -> build a plan (create / identical /
conflict + stack entries) -> validate the would-be platform with :func:`infra.spec.load_spec` on an
overlay -> apply atomically (see :mod:`infra.scaffold.apply` for the exact crash guarantee).

Entry points: :func:`infra.scaffold.plan.build_plan`, :func:`infra.scaffold.apply.apply_plan`,
:func:`infra.scaffold.apply.recover`, :func:`infra.scaffold.registry.list_services`,
:func:`infra.scaffold.registry.plan_removal`; ``upgrade-service``:
:func:`infra.scaffold.upgrade.build_upgrade` (three-way merge plan; :mod:`.merge`, :mod:`.migrations`,
:mod:`.history`, :mod:`.provenance`) and
:func:`infra.scaffold.apply.apply_upgrade`.
"""
