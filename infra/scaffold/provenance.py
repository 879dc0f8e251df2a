"""Provenance of a generated service: which template, at which git commit, with which answers.

``new-service`` writes ``services/<name>/.template-answers.yaml`` (after copier's ``.copier-answers.yml``)
beside the service's files; ``upgrade-service`` replays it. Loading it applies ``new-service``'s own
bad-input rules (the template's question types, validators and cross-answer rules), so a hand-edited
answer fails the same way a bad flag does: one line, a hint, exit 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml as pyyaml

from infra.errors import UsageError

ANSWERS_FILE = ".template-answers.yaml"
#: The manifest's ``template.version`` of the four services written by hand before the scaffolder.
HAND_WRITTEN = "initial"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: Keys the scaffolder adds to the answers for rendering (not questions).
RENDER_KEYS = ("template_name", "template_commit")


@dataclass(frozen=True)
class Provenance:
    """What a service was rendered from."""

    template: str
    commit: str
    answers: dict[str, Any]

    def dump(self, name: str) -> bytes:
        """The answers file's text (stable: question order, flow lists)."""
        head = (
            f"# Provenance of services/{name}, written by `platform new-service` and `platform "
            "upgrade-service`.\n"
            "# upgrade-service re-renders the template at this commit with these answers as the merge "
            "base;\n# change an answer with `platform upgrade-service "
            f"{name} --answer key=value`, not by editing this file.\n"
        )
        body = pyyaml.safe_dump(
            {"template": self.template, "commit": self.commit, "answers": self.answers},
            sort_keys=False,
            default_flow_style=None,
            width=4096,
        )
        return (head + body).encode()


def question_answers(answers: dict[str, Any], questions: list[str]) -> dict[str, Any]:
    """The answers to record: every asked question, in question order (unasked ones are ``None``)."""
    return {q: answers[q] for q in questions if answers.get(q) is not None}


def load(service_dir: Path) -> Provenance:
    """Read and shape-check the answers file (values are checked against the template by the caller)."""
    rel = f"services/{service_dir.name}/{ANSWERS_FILE}"
    file = service_dir / ANSWERS_FILE
    hint = f"restore it from git (git checkout -- {rel}); it is written by new-service and upgrade-service"
    if not file.is_file():
        raise UsageError(f"{rel} is missing: the service's template provenance is unknown", hint=hint)
    try:
        data = pyyaml.safe_load(file.read_text(encoding="utf-8"))
    except (pyyaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise UsageError(f"{rel}: broken YAML{where}", hint=hint) from None
    if not isinstance(data, dict):
        raise UsageError(f"{rel}: expected a mapping with template, commit and answers", hint=hint)
    unknown = sorted(set(data) - {"template", "commit", "answers"})
    if unknown:
        raise UsageError(f"{rel}: unknown key '{unknown[0]}'", hint=hint)
    template, commit, answers = data.get("template"), data.get("commit"), data.get("answers")
    if not isinstance(template, str) or not re.match(r"^[a-z][a-z0-9_-]*$", template):
        raise UsageError(f"{rel}: template: expected a template name such as fastapi", hint=hint)
    if not isinstance(commit, str) or not COMMIT.match(commit):
        raise UsageError(
            f"{rel}: commit: '{commit}' is not a git commit (40 hex digits)",
            hint="the service was generated outside a git checkout; its template base cannot be "
            "replayed - port template changes by hand",
        )
    if not isinstance(answers, dict) or not all(isinstance(k, str) for k in answers):
        raise UsageError(f"{rel}: answers: expected a mapping of question -> answer", hint=hint)
    if answers.get("name") != service_dir.name:
        raise UsageError(
            f"{rel}: answers.name is '{answers.get('name')}', not the folder's name '{service_dir.name}'",
            hint=hint,
        )
    return Provenance(template, commit, dict(answers))
