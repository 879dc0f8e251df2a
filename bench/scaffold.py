"""Benchmark: `platform new-service` vs `copier copy` of the same template with the same answers.

Both run as subprocesses (a user's wall time, interpreter start included), alternating, several
repetitions, each into a fresh copy of the checkout (see infra.scaffold.sandbox). The outputs are
checked to be the same files first. Also checks with ``python -X importtime`` that the command path
imports no pulumi. Results go to the "Scaffolding" section of docs/benchmarks.md.

    .venv/bin/python bench/scaffold.py [--reps 7]     # needs copier: pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.scaffold.provenance import ANSWERS_FILE  # noqa: E402
from infra.scaffold.sandbox import copy_checkout, layered_venv  # noqa: E402

BIN = Path(sys.executable).parent
NAME = "bench-svc"
ANSWERS = {
    "postgres": "true",
    "redis": "true",
    "publishes": "[order.created]",
    "consumes": "[listing.created]",
}
PLATFORM_ARGS = ["new-service", NAME, "--postgres", "--redis", "--publishes", "order.created"]
PLATFORM_ARGS += ["--consumes", "listing.created", "--no-input"]
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- scaffold:begin -->", "<!-- scaffold:end -->"


def copier_template(work: Path) -> Path:
    """bench/copier/copier.yml + the fastapi template's Jinja files (the same files platform renders)."""
    src = work / "copier-template"
    src.mkdir()
    shutil.copy2(REPO / "bench" / "copier" / "copier.yml", src / "copier.yml")
    shutil.copytree(REPO / "service_templates" / "fastapi" / "template", src / "template")
    return src


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) - CPU is robust to other load on the machine."""
    cpu, start = _cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start, _cpu() - cpu


def run_platform(work: Path, i: int) -> tuple[float, float]:
    root = copy_checkout(REPO, work / f"repo-{i}")
    return timed([str(BIN / "platform"), *PLATFORM_ARGS], cwd=root)


def run_install(work: Path, i: int) -> tuple[float, float]:
    """What new-service adds in a bootstrapped checkout: the editable install of the new package into
    the project environment (here a throwaway venv layered on .venv, so nothing real is touched)."""
    root = work / f"repo-{i}"
    python = layered_venv(Path(sys.prefix), root / ".venv", [])
    argv = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e"]
    return timed([*argv, f"services/{NAME}"], cwd=root)


def run_regenerate(work: Path, i: int) -> tuple[float, float]:
    """The other extra of a full checkout: rendering every committed generated artifact (compose.yaml,
    compose/*, docs pages incl. the events page) for the tree with the new service, and comparing."""
    root = copy_checkout(REPO, work / f"full-{i}", with_code=True, with_generated=True)
    subprocess.run(
        [str(BIN / "platform"), *PLATFORM_ARGS, "--no-install"], cwd=root, check=True, capture_output=True
    )
    return timed([str(BIN / "platform"), "regenerate"], cwd=root)


def run_copier(work: Path, template: Path, i: int) -> tuple[float, float]:
    dest = work / f"copier-{i}" / NAME
    data = [arg for key, value in ANSWERS.items() for arg in ("--data", f"{key}={value}")]
    cmd = [str(BIN / "copier"), "copy", "--defaults", "--quiet", *data, "--data", f"name={NAME}"]
    return timed([*cmd, str(template), str(dest)])


def same_output(work: Path) -> bool:
    """True when both tools produced the same files with the same bytes."""
    ours, theirs = work / "repo-0" / "services" / NAME, work / "copier-0" / NAME

    def files(root: Path) -> list[str]:  # the provenance file is platform's own (copier has none here)
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ANSWERS_FILE
        )

    if files(ours) != files(theirs):
        return False
    _, mismatch, errors = filecmp.cmpfiles(ours, theirs, files(ours), shallow=False)
    return not mismatch and not errors


def heavy_imports() -> tuple[list[str], float]:
    """Modules matching pulumi/checkov imported by `new-service --dry-run`, and total import ms."""
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_checkout(REPO, Path(tmp) / "repo")
        run = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "cli.main", *PLATFORM_ARGS, "--dry-run"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    rows = [line.split("|") for line in run.stderr.splitlines() if line.startswith("import time:")]
    names = [r[2].strip() for r in rows[1:]]
    total_us = sum(int(r[0].split(":")[1]) for r in rows[1:])
    return [n for n in names if re.match(r"(pulumi|checkov|kubernetes_validate)", n)], total_us / 1000


def _row(tool: str, wall: list[float], cpu: float) -> str:
    return f"| {tool} | {statistics.median(wall):.3f} | {min(wall):.3f} | {max(wall):.3f} | {cpu:.3f} |"


def write_doc(text: str) -> None:
    DOC.parent.mkdir(exist_ok=True)
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nResults of the scripts under bench/.\n"
    section = f"{BEGIN}\n{text.rstrip()}\n{END}"
    if BEGIN in current and END in current:
        current = current[: current.index(BEGIN)] + section + current[current.index(END) + len(END) :]
    else:
        current = current.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-doc", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scaffold-") as tmp:
        work = Path(tmp)
        template = copier_template(work)
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for i in range(args.reps):  # alternate so drift hits both equally
            if i % 2:
                theirs.append(run_copier(work, template, i))
                ours.append(run_platform(work, i))
            else:
                ours.append(run_platform(work, i))
                theirs.append(run_copier(work, template, i))
        identical = same_output(work)
        extras = min(args.reps, 3)
        installs = [run_install(work, i) for i in range(extras)]
        regens = [run_regenerate(work, i) for i in range(extras)]
    heavy, import_ms = heavy_imports()
    wall_ours, wall_theirs = [w for w, _ in ours], [w for w, _ in theirs]
    med_ours, med_theirs = statistics.median(wall_ours), statistics.median(wall_theirs)
    cpu_ours, cpu_theirs = statistics.median(c for _, c in ours), statistics.median(c for _, c in theirs)
    ratio = med_ours / med_theirs
    load = os.getloadavg()[0]
    version = subprocess.run(
        [str(BIN / "copier"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "## Scaffolding: `platform new-service` vs `copier copy`",
        "",
        "`python bench/scaffold.py` - the fastapi template, answers PostgreSQL + Redis + RabbitMQ",
        "(publishes `order.created`, consumes `listing.created`), both tools as subprocesses (interpreter",
        f"start included), alternating, {args.reps} repetitions, each into a fresh copy of the checkout;",
        "2-core machine. `platform new-service` also validates the whole platform (load_spec for every",
        "stack on an overlay), writes atomically (fsync + rename) and registers the service in 3 stack",
        f"files; copier ({version}) only renders files (template: bench/copier/copier.yml + the same",
        "Jinja files).",
        "",
        "| tool | median wall s | min s | max s | median CPU s |",
        "|---|---|---|---|---|",
        _row("platform new-service", wall_ours, cpu_ours),
        _row("copier copy", wall_theirs, cpu_theirs),
        _row(
            "+ package install (pip -e, no deps, no isolation)",
            [w for w, _ in installs],
            statistics.median(c for _, c in installs),
        ),
        _row(
            "+ regeneration (compose, docs, events page)",
            [w for w, _ in regens],
            statistics.median(c for _, c in regens),
        ),
        "",
        "The two `+` rows are what `new-service` adds in a bootstrapped, complete checkout (a copy with",
        "a .venv and the generated artifacts); they are not in the ratio, which compares the work both",
        f"tools do ({extras} repetitions each).",
        "",
        f"**ratio (platform / copier, median wall): {ratio:.2f}x**; median CPU: {cpu_ours / cpu_theirs:.2f}x"
        f" (target <= 0.6x). 1-min load average at the end: {load:.1f} (other work on the machine inflates"
        " wall times; CPU time is the steadier figure).",
        f"Same files, same bytes: {'yes' if identical else 'NO'}.",
        f"Imports on the command path: {import_ms:.0f} ms total (`python -X importtime`); pulumi/checkov/"
        f"kubernetes_validate modules imported: {', '.join(heavy) if heavy else 'none'}.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        write_doc(text)


if __name__ == "__main__":
    main()
