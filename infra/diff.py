"""``platform diff``: what ``pulumi up`` would do to a stack, as text, a PR comment or JSON.

The stack is rendered at the base ref and in the working tree (:mod:`infra.fork`), and the two renders
are planned by the providers' own rules (:mod:`infra.lifecycle.plan`): for every object create / update
/ replace (delete first when its name is fixed) / delete, the field that forces a replacement, every
workload whose pods roll and why, Secrets compared by digest (never by value), and hazards first.
Formatting here is pure.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from infra.lifecycle import rules
from infra.lifecycle.plan import CREATE, DELETE, REPLACE, UPDATE, FieldChange, Plan, Step, plan

MARKDOWN_LIMIT = 60_000
MAX_TEXT_DIFF_LINES = 60
WORKING_TREE = "working tree"
SIGNS = {CREATE: "+", UPDATE: "~", REPLACE: "+-", DELETE: "-"}
ICONS = {CREATE: "➕", UPDATE: "✏️", REPLACE: "♻️", DELETE: "➖"}


def diff_stack(stack: str, root: Path, base: str, *, freeze: bool = False) -> Plan:
    """Render *stack* at *base* and in the working tree, and plan the change (*freeze*: see
    :func:`infra.offline.fast_runtime`)."""
    from infra.fork import render_both

    old, new = render_both(root, base, stack, freeze=freeze)
    return plan(old, new, base)


# ---------------------------------------------------------------- one field


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value.strip()


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, str):
        text = f"<{len(value.splitlines())} lines>" if _multiline(value) else value
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def change_lines(change: FieldChange) -> list[str]:
    """``path: old -> new`` (``+``/``-`` when added/removed), a unified diff for multi-line text."""
    if change.old is None:
        return [f"+ {change.text}: {_short(change.new)}"]
    if change.new is None:
        return [f"- {change.text}: {_short(change.old)}"]
    if _multiline(change.old) or _multiline(change.new):
        old, new = str(change.old).splitlines(), str(change.new).splitlines()
        lines = list(difflib.unified_diff(old, new, lineterm="", n=1))[2:]
        shown = lines[:MAX_TEXT_DIFF_LINES]
        if len(lines) > len(shown):
            shown.append(f"... {len(lines) - len(shown)} more diff lines")
        return [f"~ {change.text}: text changed", *(f"    {line}" for line in shown)]
    return [f"~ {change.text}: {_short(change.old)} -> {_short(change.new)}"]


def why(step: Step) -> str:
    """Why the step happens and what it sets off: rolls, forced-by fields, re-runs."""
    parts = []
    if step.rolls:
        parts.append("rolls: " + "; ".join(step.rolls))
    if step.forced_by:
        parts.append("forced by " + "; ".join(step.forced_by))
    parts += [n for n in step.notes if not n.startswith("awaits")]
    return " - ".join(parts)


# ---------------------------------------------------------------- text


def _rules_line() -> str:
    return "rules: " + ", ".join(v.split(" (")[0] for v in rules.PROVIDER_VERSIONS.values())


def format_text(p: Plan) -> str:
    """Plain text: a summary line, hazards, then one block per step."""
    lines = [f"stack {p.stack}: {p.base} -> {WORKING_TREE}: {p.summary()}", _rules_line()]
    if p.hazards:
        lines.append("HAZARDS:")
        lines += [f"  ! {h.kind}: {h.message}" + (f" [{h.field}]" if h.field else "") for h in p.hazards]
    if not p.steps:
        return "\n".join([*lines, "no changes"])
    for step in p.steps:
        reason = why(step)
        lines.append(f"{SIGNS[step.op]} {step.operation} {step.ref}" + (f"  ({reason})" if reason else ""))
        for change in step.changes:
            lines += [f"    {line}" for line in change_lines(change)]
    return "\n".join(lines)


# ---------------------------------------------------------------- markdown


def _md(text: str) -> str:
    return text.replace("`", "'").replace("|", "\\|").replace("\n", " ")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _operation(step: Step) -> str:
    label = f"{ICONS[step.op]} {step.operation}"
    return f"{label}, **rolls**" if step.rolls else label


def format_markdown(p: Plan, limit: int = MARKDOWN_LIMIT) -> str:
    """A PR comment: hazards first, then the summary table (operation, object, why), details folded,
    kept under *limit* characters."""
    parts = [
        f"### `platform diff`: stack `{p.stack}` (`{_md(p.base)}` → {WORKING_TREE})",
        "",
        f"**{p.summary()}** · {_rules_line()}",
        "",
    ]
    if p.hazards:
        parts += ["#### ⚠️ Hazards", ""]
        parts += [
            f"- **{h.kind}** `{_md(h.ref)}`: {_md(h.message)}" + (f" (`{_md(h.field)}`)" if h.field else "")
            for h in p.hazards
        ]
        parts.append("")
    if not p.steps:
        return "\n".join([*parts, "No changes to Kubernetes objects."]) + "\n"
    table = ["| Operation | Object | Why |", "|---|---|---|"]
    table += [f"| {_operation(s)} | `{_md(s.ref)}` | {_md(why(s))} |" for s in p.steps]
    budget = limit - 400  # room for the truncation note
    text = "\n".join(parts) + "\n"
    shown_rows = 0
    for row in table:
        if len(text) + len(row) + 1 > budget // 2:
            break
        text += row + "\n"
        shown_rows += 1
    omitted_rows = len(table) - shown_rows
    text += "\n"
    omitted = 0
    for step in (s for s in p.steps if s.changes):
        body = "\n".join(line for c in step.changes for line in change_lines(c)).replace("```", "'''")
        block = (
            f"<details><summary><code>{_html(step.ref)}</code>: {step.operation}, "
            f"{len(step.changes)} field(s)</summary>\n\n```\n{body}\n```\n\n</details>\n\n"
        )
        if omitted or len(text) + len(block) > budget:
            omitted += 1
            continue
        text += block
    if omitted or omitted_rows:
        text += (
            f"\n_Output truncated to stay under {limit:,} characters "
            f"({omitted_rows} table rows and {omitted} detail blocks not shown); run "
            f"`platform diff --stack {p.stack} --base {_md(p.base)}` for everything._\n"
        )
    return text


def format_json(p: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (what ``--json`` prints)."""
    return p.to_dict()
