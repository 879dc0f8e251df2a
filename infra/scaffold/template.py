"""A scaffolder template: ``service_templates/<name>/template.yaml`` (its questions) + Jinja files.

Questions are typed (``str``, ``int``, ``bool``, ``list``) and validated either by a pattern/range or by
a named validator that reuses the rules of :mod:`infra.spec` (never a copy of them).
"""

from __future__ import annotations

import keyword
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra import spec
from infra.errors import SpecError, UsageError

TEMPLATES_DIR = "service_templates"


def _check_service_name(value: str) -> None:
    if not value:
        raise ValueError("the service name is empty")
    if "/" in value or "\\" in value or value.startswith("."):
        raise ValueError(f"'{value}' is a path, not a name (no '/', '\\' or leading '.')")
    spec._check_name(value)  # RESERVED_NAMES, DNS1035, MAX_SERVICE_NAME
    package = value.replace("-", "_")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names:
        raise ValueError(f"'{value}' would make the Python package '{package}', which shadows Python's own")


def _check_route(value: str) -> None:
    if not spec.ROUTE.match(value):
        raise ValueError(
            f"'{value}' is not a route like '/api/orders' (starts with '/', lowercase segments, "
            "no trailing '/')"
        )


def _check_event(value: str) -> None:
    if not spec.EVENT_NAME.match(value):
        raise ValueError(
            f"'{value}' is not an event name like 'listing.created' (lowercase dot-separated words)"
        )


def _check_identifier(value: str) -> None:
    if not re.match(r"^[a-z][a-z0-9_]*$", value) or keyword.iskeyword(value):
        raise ValueError(f"'{value}' is not a lowercase Python identifier like 'orders'")


#: Named validators a question may use; each raises ValueError with a one-line message.
VALIDATORS: dict[str, Callable[[str], None]] = {
    "service_name": _check_service_name,
    "route": _check_route,
    "event_name": _check_event,
    "identifier": _check_identifier,
}


class Question(BaseModel):
    """One question of a template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["str", "int", "bool", "list"]
    help: str
    default: Any = None
    validator: Literal["service_name", "route", "event_name", "identifier"] | None = None
    pattern: str | None = None
    min: int | None = None
    max: int | None = None
    when: str | None = Field(None, description="Jinja expression; the question is asked only if true")
    flag: str | None = Field(None, description="CLI flag name, default --<name with '-'>")

    @property
    def required(self) -> bool:
        return self.default is None and self.type != "bool"


class Rule(BaseModel):
    """A cross-answer check: when *when* is true the answers are rejected with *error* and *hint*."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: str
    error: str
    hint: str


class TemplateSpec(BaseModel):
    """``template.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    template_dir: str = "template"
    templates_suffix: str = ".jinja"
    questions: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Question]
    computed: dict[str, str] = Field({}, description="name -> Jinja expression over the answers")
    rules: list[Rule] = Field([], description="cross-answer checks, evaluated after computed values")
    stack_entries: dict[str, dict[str, Any]] = Field(
        {},
        description="platform:services entry a new service gets per stack environment (dev, staging, "
        "prod); upgrade-service merges changes to it into the stack files",
    )


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached under ``$XDG_CACHE_HOME/platform/jinja`` (keyed by source checksum)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "platform" / "jinja"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: compile every time
    return jinja2.FileSystemBytecodeCache(str(base))


class Template:
    """A loaded template: its spec, folder and Jinja environment."""

    def __init__(self, name: str, root: Path, template_spec: TemplateSpec) -> None:
        self.name = name
        self.folder = root / TEMPLATES_DIR / name
        self.spec = template_spec
        # Code generation, not HTML: autoescape would corrupt the output.
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.folder),
            bytecode_cache=_bytecode_cache(),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,  # noqa: S701
        )

    @property
    def files_dir(self) -> Path:
        return self.folder / self.spec.template_dir

    def expression(self, source: str, context: dict[str, Any]) -> Any:
        """Evaluate a Jinja expression (``when``, ``computed``) with strict undefined names."""
        try:
            return self.env.compile_expression(source, undefined_to_none=False)(**context)
        except jinja2.TemplateError as exc:
            raise SpecError(
                f"{self.folder / 'template.yaml'}: expression '{source}': {exc}",
                hint="fix the template's expression",
            ) from exc

    def default(self, question: Question, context: dict[str, Any]) -> Any:
        """A question's default; string defaults are Jinja templates over earlier answers."""
        value = question.default
        if isinstance(value, str) and "{" in value:
            try:
                value = self.env.from_string(value).render(**context)
            except jinja2.TemplateError as exc:
                raise SpecError(
                    f"{self.folder / 'template.yaml'}: default '{question.default}': {exc}",
                    hint="fix the template's default",
                ) from exc
        if question.type == "bool" and value is None:
            return False
        return value

    def asked(self, question: Question, context: dict[str, Any]) -> bool:
        return question.when is None or bool(self.expression(question.when, context))


def available_templates(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / TEMPLATES_DIR).glob("*/template.yaml"))


def load_template(name: str, root: Path) -> Template:
    """Load and validate ``service_templates/<name>/template.yaml``."""
    if not re.match(r"^[a-z][a-z0-9_-]*$", name):
        raise UsageError(f"'{name}' is not a template name", hint=_known_hint(root))
    file = root / TEMPLATES_DIR / name / "template.yaml"
    if not file.is_file():
        raise UsageError(f"unknown template '{name}'", hint=_known_hint(root))
    data = spec.read_yaml(file)
    try:
        template_spec = TemplateSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise SpecError(
            f"{file}: {where}: {error['msg']}", hint="fix template.yaml; see service_templates/README.md"
        ) from exc
    template = Template(name, root, template_spec)
    if not template.files_dir.is_dir():
        raise SpecError(f"{template.files_dir}: template folder missing", hint="add the template's files")
    return template


def _known_hint(root: Path) -> str:
    return f"use one of: {', '.join(available_templates(root)) or 'none'} (--template)"


def coerce(name: str, question: Question, raw: Any) -> Any:
    """Turn a flag/prompt/default value into the question's type and validate it (UsageError)."""
    value = raw
    try:
        if question.type == "int":
            if isinstance(raw, bool) or not re.fullmatch(r"-?[0-9]+", str(raw).strip()):
                raise ValueError(f"'{raw}' is not a whole number")
            value = int(raw)
        elif question.type == "bool":
            if isinstance(raw, str):
                if raw.strip().lower() not in {"y", "yes", "true", "1", "n", "no", "false", "0"}:
                    raise ValueError(f"'{raw}' is not yes/no")
                value = raw.strip().lower() in {"y", "yes", "true", "1"}
            else:
                value = bool(raw)
        elif question.type == "list":
            items = raw.split(",") if isinstance(raw, str) else list(raw or [])
            value = [str(item).strip() for item in items if str(item).strip()]
            if len(set(value)) != len(value):
                raise ValueError("lists a value twice")
        else:
            value = str(raw).strip()
        _validate(question, value)
    except ValueError as exc:
        raise UsageError(f"{flag_text(name, question)}: {exc}", hint=question.help) from exc
    return value


def _validate(question: Question, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if question.validator:
            VALIDATORS[question.validator](item)
        if question.pattern and not re.fullmatch(question.pattern, str(item)):
            raise ValueError(f"'{item}' does not match {question.pattern}")
        if question.min is not None and item < question.min:
            raise ValueError(f"{item} is below {question.min}")
        if question.max is not None and item > question.max:
            raise ValueError(f"{item} is above {question.max}")


#: Questions ``platform new-service`` answers from a positional argument, and from its own options;
#: any other question is answered with ``--set <name>=VALUE`` (tests/cli check these against the CLI).
ARGUMENT_QUESTIONS = frozenset({"name"})
OPTION_QUESTIONS = frozenset(
    {
        "route",
        "description",
        "resource",
        "port",
        "postgres",
        "database",
        "redis",
        "redis_db",
        "publishes",
        "consumes",
    }
)


def _flag(name: str, question: Question) -> str:
    return question.flag or name.replace("_", "-")


def flag_text(name: str, question: Question) -> str:
    """How the user answers *question* on the command line: ``NAME``, ``--route`` or ``--set key=...``."""
    if name in ARGUMENT_QUESTIONS:
        return name.upper()
    if question.flag or name in OPTION_QUESTIONS:
        return f"--{_flag(name, question)}"
    return f"--set {name}=..."


Prompter = Callable[[str, Question, Any], Any]


def resolve_answers(
    template: Template,
    given: dict[str, Any],
    prompter: Prompter | None = None,
    recorded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answers in question order: a flag wins, else a prompt (TTY only), else the default.

    A question without a default and without a flag is an error when there is no prompter.
    *recorded* answers (an upgrade's replay) come after flags and before prompts and defaults; one
    whose question is no longer asked (its ``when`` became false) is dropped, not an error.
    """
    recorded = {k: v for k, v in (recorded or {}).items() if k in template.spec.questions}
    questions = template.spec.questions
    for name in given:
        if name not in questions:
            raise UsageError(f"template '{template.name}' has no question '{name}'", hint="see --help")
    context: dict[str, Any] = {}
    for name, question in questions.items():
        if not template.asked(question, context):
            if name in given:
                raise UsageError(
                    f"{flag_text(name, question)} does not apply here ({question.when} is false)",
                    hint=f"drop {flag_text(name, question)} or enable what it depends on",
                )
            context[name] = None
            continue
        default = template.default(question, context)
        if name in given:
            context[name] = coerce(name, question, given[name])
        elif name in recorded:
            context[name] = coerce(name, question, recorded[name])
        elif prompter is not None:
            context[name] = _prompt_until_valid(template, prompter, name, question, default, context)
        elif default is None and question.required:
            flag = flag_text(name, question)
            how = (
                f"give {flag}, e.g. `platform new-service orders-svc`"
                if name in ARGUMENT_QUESTIONS
                else (f"pass {flag}")
            )
            raise UsageError(
                f"missing answer for '{name}' ({question.help})",
                hint=f"{how}; prompts are only shown on a terminal",
            )
        else:
            context[name] = coerce(name, question, default)
    for name, source in template.spec.computed.items():
        context[name] = template.expression(source, context)
    for rule in template.spec.rules:
        if template.expression(rule.when, context):
            render = template.env.from_string
            raise UsageError(render(rule.error).render(**context), hint=render(rule.hint).render(**context))
    return context


def _broken_rule(template: Template, context: dict[str, Any]) -> tuple[str, str] | None:
    """The first rule that already fails with the answers so far (rules that need later answers wait)."""
    trial = dict(context)
    for name, source in template.spec.computed.items():
        try:
            trial[name] = template.expression(source, trial)
        except (SpecError, jinja2.TemplateError):
            continue
    render = template.env.from_string
    for rule in template.spec.rules:
        try:
            if template.expression(rule.when, trial):
                return render(rule.error).render(**trial), render(rule.hint).render(**trial)
        except (SpecError, jinja2.TemplateError):
            continue
    return None


def _prompt_until_valid(
    template: Template,
    prompter: Prompter,
    name: str,
    question: Question,
    default: Any,
    context: dict[str, Any],
) -> Any:
    """Ask until the answer is valid on its own and with the answers before it; earlier answers stay.

    Ctrl-C (or end of input) ends the command (the CLI exits 130).
    """
    while True:
        raw = prompter(name, question, default)
        try:
            value = coerce(name, question, raw)
        except UsageError as exc:
            sys.stderr.write(f"error: {exc.message}\n")
            continue
        broken = _broken_rule(template, {**context, name: value})
        if broken is None:
            return value
        sys.stderr.write(f"error: {broken[0]}\nhint: {broken[1]}\n")
