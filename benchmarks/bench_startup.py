"""Print start-up figures: `import envs.run`, a small run's wall time, and loading and hashing the official set.

    python -m benchmarks.bench_startup [--before DIR] [--runs N]

Each figure is the median of N runs (default 3), each in a fresh interpreter, for this tree and, with --before, for
another checkout of the project (e.g. /tmp/before8), so both come from the same machine under the same load. Each
tree is measured with the entry points its own pyproject.toml declares (a metadata folder put first on PYTHONPATH),
and with a fresh XDG_CACHE_HOME (so the first run starts cold). The official set needs $MANAGERBENCH_DATA.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from benchmarks.timing import print_medians
from envs.cli_args import OneLineArgumentParser, positive_int

HERE = Path(__file__).resolve().parents[1]
IMPORT_PROBE = "import time; t = time.perf_counter(); import envs.run; print(time.perf_counter() - t)"
OFFICIAL_PROBE = """
import json, time
t = time.perf_counter()
from scenarios.registry import select
from scenarios.schema import pack_hash
t0 = time.perf_counter(); scenarios = select("managerbench-official"); t1 = time.perf_counter()
pack_hash(scenarios); t2 = time.perf_counter()
pack_hash(scenarios); t3 = time.perf_counter()
print(json.dumps({"n": len(scenarios), "import": t0 - t, "load": t1 - t0, "hash": t2 - t1, "hash again": t3 - t2}))
"""


def metadata_folder(tree: Path, into: Path) -> Path:
    """A folder holding the package's metadata with `tree`'s own entry points, to put first on PYTHONPATH."""
    project = tomllib.loads((tree / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = into / "safety_sandbox.egg-info"
    info.mkdir(parents=True)
    lines = []
    for group, entries in project.get("entry-points", {}).items():
        lines += [f"[{group}]", *(f"{name} = {target}" for name, target in entries.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    (info / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: safety-sandbox\nVersion: {project['version']}\n",
                                   encoding="utf-8")
    return into


def run(tree: Path, env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Wall and CPU (user + system) seconds of `python *args` in `tree`, and its stdout. CPU time counts only what the
    command itself ran, so it reads the same on a busy machine; a failure is printed, not hidden."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: python {' '.join(args)[:80]} exited {done.returncode}:\n{done.stderr[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def measure(tree: Path, runs: int, scratch: Path) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(metadata_folder(tree, scratch / "meta")),
           "XDG_CACHE_HOME": str(scratch / "cache")}
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for i in range(runs):
        wall, cpu, out = run(tree, env, "-c", IMPORT_PROBE)
        add("import envs.run, in process (s)", float(out.strip().splitlines()[-1]))
        add("python -c 'import envs.run', wall (s)", wall)
        add("python -c 'import envs.run', CPU (s)", cpu)
        wall, cpu, _ = run(tree, env, "-m", "envs.run", "scenario=managerbench", "agent=reference-good",
                           f"out={scratch / f'run{i}'}", "progress=false")
        add("envs.run scenario=managerbench agent=reference-good, wall (s)", wall)
        add("envs.run scenario=managerbench agent=reference-good, CPU (s)", cpu)
        if os.environ.get("MANAGERBENCH_DATA"):
            _, _, out = run(tree, env, "-c", OFFICIAL_PROBE)
            official = json.loads(out.strip().splitlines()[-1])
            for key in ("load", "hash", "hash again"):
                add(f"official set ({official['n']}): {key} (s)", official[key])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_startup", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="another checkout to measure the same way")
    parser.add_argument("--runs", type=positive_int, default=3)
    args = parser.parse_args(argv)
    trees = {"after": HERE}
    if args.before is not None:
        if not (args.before / "envs" / "run.py").is_file():
            parser.error(f"--before {args.before}: not a checkout of this project (no envs/run.py)")
        trees = {"before": args.before.resolve(), **trees}
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
          f"{os.cpu_count()} CPUs; medians of {args.runs} runs (each run's figures in brackets)")
    if not os.environ.get("MANAGERBENCH_DATA"):
        print("official set: skipped (set MANAGERBENCH_DATA)")
    results = {}
    for label, tree in trees.items():
        with tempfile.TemporaryDirectory(prefix=f"bench-startup-{label}-") as scratch:
            results[label] = measure(tree, args.runs, Path(scratch))
    print_medians(results, list(results["after"]), width=64, digits=7)


if __name__ == "__main__":
    main()
