"""`platform dev` timing: cold `up` (fresh state dir: initdb, migrations, RabbitMQ boot) to all-healthy,
warm `up` (data kept), and `down`.

    .venv/bin/python bench/devup.py [--runs 2]

Runs the real `platform` CLI as a subprocess, like a user. Target: cold up <= 20 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLATFORM = str(Path(sys.executable).with_name("platform"))


def timed(*args: str) -> float:
    start = time.monotonic()
    result = subprocess.run([PLATFORM, *args], capture_output=True, text=True, timeout=300, check=False)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"platform {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return round(elapsed, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for _ in range(args.runs):
        state_dir = Path(tempfile.mkdtemp(prefix="bench-devup-"))
        state_dir.chmod(0o755)
        try:
            cold = timed("dev", "up", "--state-dir", str(state_dir))
            down = timed("dev", "down", "--state-dir", str(state_dir))
            warm = timed("dev", "up", "--state-dir", str(state_dir))
            down_warm = timed("dev", "down", "--state-dir", str(state_dir))
        finally:
            subprocess.run(
                [PLATFORM, "dev", "down", "--state-dir", str(state_dir)], capture_output=True, check=False
            )
            shutil.rmtree(state_dir, ignore_errors=True)
        rows.append({"cold_up_s": cold, "down_s": down, "warm_up_s": warm, "warm_down_s": down_warm})
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
