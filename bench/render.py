"""Benchmark: offline rendering next to its floors, in one run.

    .venv/bin/python bench/render.py [--reps 5] [--markdown] [--update-docs]

Every case is a fresh subprocess (what a user or CI pays), timed for wall clock and CPU
(user + sys of the process and its children). Cases run round-robin, one warm-up round first, so
background load hits all of them alike:

- **import floor**: ``python -c "import pulumi, pulumi_kubernetes, <its submodules>, pulumi_random,
  pulumi_docker"``; the submodule set is measured, not assumed: ``-X importtime`` of a dev render;
- **render dev**: ``platform render --stack dev -o <tmp>``;
- **render 10 / 100 services**: the same command in a generated checkout (``Pulumi.yaml``,
  ``__main__.py``, ``stacks/``, ``services/svc-NNN/service.yaml`` with distinct routes and a mix of
  Postgres / Redis / RabbitMQ needs) rendered with this repository's code (``platform`` imports it);
  the marginal cost per resource is ``(t100 - t10) / (resources100 - resources10)``;
- **diff**: ``platform diff --stack dev --base HEAD`` (renders the base and the working tree);
- **help**: ``platform --help`` next to ``--help`` of ``bench/typer_minimal.py``.

Targets (ratios of median wall times): dev render <= 1.5x floor, 100-service render <= 5x floor,
diff <= 1.3x one render, ``platform --help`` <= 1.5x the minimal Typer app. This is a benchmark,
never a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python")
PLATFORM = str(BIN / "platform")
DOCS = ROOT / "docs" / "benchmarks.md"
DOCS_BEGIN = "<!-- bench/render.py: begin -->"
DOCS_END = "<!-- bench/render.py: end -->"
#: Top-level packages of the Pulumi SDKs the program uses; the floor imports exactly these trees.
SDK_PACKAGES = ("pulumi", "pulumi_kubernetes", "pulumi_random", "pulumi_docker")


@dataclass
class Case:
    """One command, timed several times."""

    label: str
    argv: list[str]
    cwd: Path
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    def run(self) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(self.argv, cwd=self.cwd, capture_output=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise SystemExit(f"{self.label}: exit {proc.returncode}\n" + "\n".join(tail))
        self.walls.append(wall)
        self.cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)


# ---------------------------------------------------------------- the import floor


def sdk_modules() -> list[str]:
    """The SDK packages and per-API-version submodules a dev render imports (``-X importtime``)."""
    code = "from pathlib import Path; from infra.offline import render_stack; render_stack('dev', Path.cwd())"
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # pulumi_kubernetes loads its API-version packages lazily (importlib.util.LazyLoader), so
    # importtime lists their submodules (``pulumi_kubernetes.core.v1._enums``), not the packages.
    version = re.compile(r"^pulumi_kubernetes\.[a-z_0-9]+\.v[0-9]+[a-z0-9]*(?=\.|$)")
    found = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        name = line.rsplit("|", 1)[1].strip()
        if name in SDK_PACKAGES:
            found.add(name)
        elif match := version.match(name):
            found.add(match.group(0))
    missing = [p for p in SDK_PACKAGES if p not in found]
    if missing:
        raise SystemExit(f"a dev render did not import {missing}; is the render broken?")
    return sorted(found, key=lambda m: (SDK_PACKAGES.index(m.split(".")[0]), m))


# ---------------------------------------------------------------- synthetic checkouts


def service_manifest(i: int, n: int) -> dict:
    """A realistic, deterministic service: ~3/4 use Postgres, 1/2 Redis, 2/3 publish, 1/3 consume."""
    name = f"svc-{i:03d}"
    needs: dict = {}
    if i % 4 != 3:
        needs["postgres"] = {"database": f"svc_{i:03d}"}
    if i % 2 == 0:
        needs["redis"] = {"db": i % 16}
    publishes = [f"svc{i:03d}.created", f"svc{i:03d}.updated"][: 1 + i % 2] if i % 3 != 2 else []
    # consume an event of an earlier publisher (index j with j % 3 != 2), if there is one
    earlier = [j for j in range(max(0, i - 3), i) if j % 3 != 2]
    consumes = [f"svc{earlier[-1]:03d}.created"] if earlier and i % 3 == 1 else []
    if publishes or consumes:
        needs["rabbitmq"] = {k: v for k, v in (("publishes", publishes), ("consumes", consumes)) if v}
    gateway: dict = {}
    if i % 5 == 0:
        gateway |= {"cache": True, "cache_ttl": "10s"}
    if i % 7 == 0:
        gateway["websocket"] = True
    if i % 6 == 0:
        gateway["body_limit"] = "2m"
    manifest = {
        "name": name,
        "description": f"synthetic service {i} of {n}",
        "template": {"name": "fastapi", "version": "bench"},
        "port": 8000,
        "route": f"/api/svc-{i:03d}",
        "needs": needs,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
    }
    if gateway:
        manifest["gateway"] = gateway
    return manifest


def make_checkout(dest: Path, n: int, stack: str = "dev") -> Path:
    """A checkout with *n* generated services, the repo's program and its dev stack config.

    No code is copied: ``platform`` runs this repository's ``infra`` and the program loads the
    services next to its own ``__main__.py``.
    """
    dest.mkdir(parents=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy2(ROOT / name, dest / name)
    data = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    config = data["config"]
    config["platform:services"] = {f"svc-{i:03d}": {"replicas": 1} for i in range(n)}
    config["platform:quota"] = {"cpu": str(n + 8), "memory": f"{2 * n + 16}Gi", "pods": 3 * n + 30}
    (dest / "stacks").mkdir()
    (dest / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    for i in range(n):
        folder = dest / "services" / f"svc-{i:03d}"
        folder.mkdir(parents=True)
        (folder / "service.yaml").write_text(yaml.safe_dump(service_manifest(i, n), sort_keys=False))
    return dest


def count(tree: Path, stack: str = "dev") -> dict[str, int]:
    """Resources registered (components included) and manifests produced by one render of *tree*."""
    code = (
        "import json; from pathlib import Path; from infra.offline import render\n"
        f"r = render({stack!r}, Path.cwd())\n"
        "print(json.dumps({'resources': len(r.captured), 'manifests': len(r.manifests)}))"
    )
    proc = subprocess.run([PYTHON, "-c", code], cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


# ---------------------------------------------------------------- report


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def fmt_case(case: Case) -> str:
    return f"| {case.label} | {case.wall:.2f} | {min(case.walls):.2f} | {case.cpu:.2f} | {len(case.walls)} |"


def report(cases: dict[str, Case], counts: dict[str, dict[str, int]], modules: list[str], load: str) -> str:
    """The markdown report: timings, marginal cost, ratios against targets."""
    floor, dev, s10, s100 = cases["floor"], cases["dev"], cases["s10"], cases["s100"]
    diff, helps, helpm = cases["diff"], cases["help"], cases["help_min"]
    r10, r100 = counts["s10"]["resources"], counts["s100"]["resources"]
    marginal_wall = (s100.wall - s10.wall) / (r100 - r10) * 1000
    marginal_cpu = (s100.cpu - s10.cpu) / (r100 - r10) * 1000
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; {load}.",
        "",
        f"Import floor modules ({len(modules)}, from `-X importtime` of a dev render): "
        + ", ".join(f"`{m}`" for m in modules)
        + ".",
        "",
        "| case (fresh process each run) | median wall s | min wall s | median CPU s | runs |",
        "|---|---|---|---|---|",
        *(fmt_case(c) for c in cases.values()),
        "",
        "| stack | resources (components included) | manifests |",
        "|---|---|---|",
        *(f"| {cases[k].label} | {v['resources']} | {v['manifests']} |" for k, v in counts.items()),
        "",
        f"Marginal cost per resource (100 vs 10 services): **{marginal_wall:.1f} ms wall**, "
        f"{marginal_cpu:.1f} ms CPU.",
        "",
        "| target | ratio (median wall) | ratio (median CPU) | verdict |",
        "|---|---|---|---|",
    ]
    targets = [
        ("dev render <= 1.5x import floor", dev, floor, 1.5),
        ("100-service render <= 5x import floor", s100, floor, 5.0),
        ("diff <= 1.3x one dev render", diff, dev, 1.3),
        ("`platform --help` <= 1.5x minimal Typer app", helps, helpm, 1.5),
    ]
    for text, num, den, target in targets:
        ratio = num.wall / den.wall
        lines.append(f"| {text} | {ratio:.2f} | {num.cpu / den.cpu:.2f} | {verdict(ratio, target)} |")
    return "\n".join(lines) + "\n"


def update_docs(body: str) -> None:
    """Replace the text between this benchmark's markers in docs/benchmarks.md (append if absent)."""
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    block = f"{DOCS_BEGIN}\n{body}{DOCS_END}"
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + block + rest.split(DOCS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs per case (after one warm-up)")
    parser.add_argument("--update-docs", action="store_true", help="write the results table into docs")
    args = parser.parse_args()

    modules = sdk_modules()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp_name:
        tmp = Path(tmp_name)
        s10 = make_checkout(tmp / "s10", 10)
        s100 = make_checkout(tmp / "s100", 100)

        def render(out: str) -> list[str]:  # each case writes into its own folder
            return ["render", "-s", "dev", "-o", str(tmp / "out" / out)]

        minimal = [PYTHON, str(ROOT / "bench" / "typer_minimal.py"), "--help"]
        cases = {
            "floor": Case("import floor", [PYTHON, "-c", "import " + ", ".join(modules)], ROOT),
            "dev": Case("`platform render --stack dev -o DIR`", [PLATFORM, *render("dev")], ROOT),
            "s10": Case("render, 10 services", [PLATFORM, *render("s10")], s10),
            "s100": Case("render, 100 services", [PLATFORM, *render("s100")], s100),
            "diff": Case(
                "`platform diff --stack dev --base HEAD`",
                [PLATFORM, "diff", "-s", "dev", "--base", "HEAD"],
                ROOT,
            ),
            "help": Case("`platform --help`", [PLATFORM, "--help"], ROOT),
            "help_min": Case("minimal Typer app `--help`", minimal, ROOT),
        }
        counts = {key: count(tree) for key, tree in (("dev", ROOT), ("s10", s10), ("s100", s100))}
        load_before = load_text()
        for rep in range(args.reps + 1):  # round 0 is the warm-up
            for case in cases.values():
                case.run()
                if rep == 0:
                    case.walls.clear()
                    case.cpus.clear()
            print(f"round {rep}/{args.reps} done ({load_text()})", file=sys.stderr)
        load = f"{load_before} before, {load_text()} after"
    body = report(cases, counts, modules, load)
    print(body)
    if args.update_docs:
        update_docs(body)
        print(f"updated {DOCS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
