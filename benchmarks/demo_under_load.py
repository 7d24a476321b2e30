"""`nextk demo` on a shared machine: its wall time alone and beside one and two CPU-bound processes (`while True:
pass` subprocesses this script starts and kills), with default settings (no NEXTK_THREADS / OMP_NUM_THREADS in
its environment), against the same command alone on torch's own default of one thread per core (what `nextk`
used before the thread policy of nextk/threads.py; `--threads CORES` reproduces it).

Targets (issue 21): beside two busy processes at most 2.5× its idle time; alone no slower than before.
Each demo writes into a fresh temporary folder (no resume). Busy processes start before the demo, run at the
same priority and are killed (by their own process ids) when it ends.

Run: .venv/bin/python benchmarks/demo_under_load.py     (BENCH_SMALL=1 or --small: a tiny demo, a check that the
     script runs, not a measurement; about 1 minute)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SMALL

HEADER = (
    "| `nextk demo`, default settings | alone | beside 1 busy process | beside 2 busy processes | 2 busy ÷ alone "
    "| before (torch's default threads), alone |\n|---|---|---|---|---|---|"
)
NEXTK = str(Path(sys.executable).with_name("nextk"))
TINY = ["--steps", "20", "--sizes", "2", "--num-docs", "16", "--learned-steps", "5", "--learned-docs", "64"]
TINY += ["--k", "1,2", "--eval-every", "10"]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def clean_env() -> dict:
    """This environment without any thread setting: the command's own defaults decide."""
    drop = {"NEXTK_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def demo_seconds(extra: list[str], neighbours: int) -> float:
    """Wall seconds of one `nextk demo` (fresh folder) beside `neighbours` busy processes."""
    folder = tempfile.mkdtemp(prefix="nextk-demo-load-")
    procs = busy(neighbours)
    try:
        time.sleep(0.5 if neighbours else 0)  # let them take their cores
        t0 = time.perf_counter()
        cmd = [NEXTK, "demo", "--out", folder, "--no-progress", *(TINY if SMALL else []), *extra]
        out = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    finally:
        for p in procs:  # only the processes started here, by their own ids
            p.kill()
            p.wait()
        shutil.rmtree(folder, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"nextk demo failed ({out.returncode}): {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return seconds


def main():
    n = cores()
    t = {load: demo_seconds([], load) for load in (0, 1, 2)}
    before = demo_seconds(["--threads", str(n)], 0)
    ratio = t[2] / t[0]
    print(
        f"| {'tiny demo (--small)' if SMALL else 'default demo'}, {n} cores | {t[0]:.1f} s | {t[1]:.1f} s "
        f"| {t[2]:.1f} s | **{ratio:.2f}×** (target ≤ 2.5×: {'met' if ratio <= 2.5 else 'missed'}) "
        f"| {before:.1f} s ({t[0] / before:.2f} of it: {'no slower' if t[0] <= before * 1.05 else 'slower'}) |"
    )
    print(
        f"  one run each; alone = no busy process started here (other users' load is not controlled: run on an idle "
        f"machine); before = `nextk demo --threads {n}`"
    )
    return {"alone_s": t[0], "one_busy_s": t[1], "two_busy_s": t[2], "ratio": ratio, "before_alone_s": before}


if __name__ == "__main__":
    print(HEADER)
    main()
