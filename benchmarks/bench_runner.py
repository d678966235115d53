"""Print the runner's figures on the official ManagerBench set (2,440 episodes, agent=reference-good).

    python -m benchmarks.bench_runner [--before DIR] [--runs N] [--skip wall,rate,store,memory]

- wall: `python -m envs.run scenario=managerbench-official agent=reference-good out=<tmp>` as a subprocess, start-up
  included, at workers=1 and workers=2;
- rate: episodes/s of the run itself (`open_run`, then the episodes, the store and the results; loading excluded) at
  workers=1 and workers=2, and their ratio;
- store: `TrajectoryStore.add_episodes` per episode, 1,000 episodes in batches of 100 (as the runner writes them),
  given trajectories (serialised by the store) and, where the tree has it, given the JSON the jsonl writer made;
- memory: peak RSS (ru_maxrss of the run's process and the children it waited for) of a workers=1 run of 10
  episodes against all 2,440 (both load the whole set).
Each figure is the median of N runs (default 3), for this tree and, with --before, for another checkout (e.g.
/tmp/before8), measured the same way on the same machine (each tree with its own entry points; see bench_startup).
Needs $MANAGERBENCH_DATA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_startup import metadata_folder
from benchmarks.timing import print_medians
from envs.cli_args import OneLineArgumentParser, positive_int

HERE = Path(__file__).resolve().parents[1]
OFFICIAL = ["scenario=managerbench-official", "agent=reference-good", "progress=false"]
STORE_EPISODES = 1000
STORE_BATCH = 100
PARTS = ("wall", "rate", "store", "memory")

RATE_PROBE = """
import json, sys, time
from envs.config import parse_args
from envs.runner import open_run
config = parse_args(sys.argv[1:])
with open_run(config) as run:
    start = time.perf_counter()
    outcome = run(None)
    seconds = time.perf_counter() - start
print(json.dumps({"ran": outcome.ran, "seconds": seconds}))
"""

STORE_PROBE = """
import json, sys, time
from pathlib import Path
from evaluator.jsonl import read_trajectories
from evaluator.store import TrajectoryStore
source, scratch, n, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
trajectories = read_trajectories(source)[:n]
figures = {}
def timed(name, rows):
    store = TrajectoryStore(f"sqlite:///{scratch / (name + '.sqlite')}")
    store.save_run("run", "{}")
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        store.add_episodes("run", rows[i:i + batch])
    figures[name] = (time.perf_counter() - start) / len(rows) * 1000
timed("trajectories", trajectories)
import evaluator.store
if (Path(evaluator.store.__file__).parent / "serialised.py").exists():  # this tree's own, not the editable install's
    from evaluator.serialised import SerialisedEpisode
    lines = source.read_text(encoding="utf-8").split("\\n")
    timed("json reused", [SerialisedEpisode.of(t, json=line) for t, line in zip(trajectories, lines)])
print(json.dumps(figures))
"""


class Tree:
    def __init__(self, label: str, root: Path, scratch: Path) -> None:
        self.label, self.root, self.scratch = label, root, scratch
        self.env = {**os.environ, "PYTHONPATH": str(metadata_folder(root, scratch / "meta")),
                    "XDG_CACHE_HOME": str(scratch / "cache")}
        self.runs = 0

    def out(self) -> str:
        self.runs += 1
        return f"out={self.scratch / f'run{self.runs}'}"

    def python(self, *args: str) -> tuple[float, str]:
        """Wall seconds and stdout of `python *args` run in the tree; a failure stops the benchmark with its stderr."""
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"{self.label}: python {' '.join(args)[:100]} exited {done.returncode}:\n"
                             f"{done.stderr[-1500:]}")
        return time.perf_counter() - start, done.stdout


def peak_rss_kib(tree: Tree, *args: str) -> tuple[float, int]:
    """Wall and peak RSS of one run, read in a fresh interpreter that only waits for it (RUSAGE_CHILDREN is the
    largest of all children a process ever waited for, so each run gets its own)."""
    probe = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    _, out = tree.python("-c", probe, sys.executable, "-m", "envs.run", *args)
    wall, rss = json.loads(out.strip().splitlines()[-1])
    return wall, rss


def measure(tree: Tree, runs: int, parts: set[str], source: Path | None) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)
        print(f"  {tree.label}: {name}: {value:.3f}", file=sys.stderr, flush=True)  # progress, while it runs

    for _ in range(runs):
        if "wall" in parts:
            for workers in (1, 2):
                wall, rss = peak_rss_kib(tree, *OFFICIAL, tree.out(), f"workers={workers}")
                add(f"official set, wall with start-up, workers={workers} (s)", wall)
                if workers == 1 and "memory" in parts:
                    add("peak RSS, workers=1, 2,440 episodes (MiB)", rss / 1024)
        if "memory" in parts:
            _, rss = peak_rss_kib(tree, *OFFICIAL, tree.out(), "workers=1", "limit=10")
            add("peak RSS, workers=1, 10 episodes (MiB)", rss / 1024)
        if "rate" in parts:
            rates = {}
            for workers in (1, 2):
                _, out = tree.python("-c", RATE_PROBE, *OFFICIAL, tree.out(), f"workers={workers}")
                done = json.loads(out.strip().splitlines()[-1])
                rates[workers] = done["ran"] / done["seconds"]
                add(f"episodes/s of the run, workers={workers}", rates[workers])
            add("workers=2 / workers=1", rates[2] / rates[1])
        if "store" in parts and source is not None:
            _, out = tree.python("-c", STORE_PROBE, str(source), str(tree.scratch), str(STORE_EPISODES),
                                    str(STORE_BATCH))
            for name, ms in json.loads(out.strip().splitlines()[-1]).items():
                add(f"store add_episodes per episode, {name} (ms)", ms)
    return figures


def trajectories_for_the_store(scratch: Path) -> Path:
    """A jsonl of official episodes, made once by this tree, read by every tree's store probe."""
    out = scratch / "source"
    subprocess.run([sys.executable, "-m", "envs.run", *OFFICIAL, f"out={out}", f"limit={STORE_EPISODES}"],
                   cwd=HERE, check=True, capture_output=True, timeout=900)
    return out / "trajectories.jsonl"


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="another checkout to measure the same way")
    parser.add_argument("--runs", type=positive_int, default=3)
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    skipped = {p.strip() for p in args.skip.split(",") if p.strip()}
    if unknown := skipped - set(PARTS):
        parser.error(f"--skip {args.skip}: unknown part(s) {', '.join(sorted(unknown))}; parts: {', '.join(PARTS)}")
    if not os.environ.get("MANAGERBENCH_DATA"):
        parser.error("set MANAGERBENCH_DATA to the official ManagerBench data (its bench/ folder's parent)")
    trees = {"after": HERE}
    if args.before is not None:
        if not (args.before / "envs" / "run.py").is_file():
            parser.error(f"--before {args.before}: not a checkout of this project (no envs/run.py)")
        trees = {"before": args.before.resolve(), **trees}
    parts = set(PARTS) - skipped
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min), {os.cpu_count()} CPUs; medians of "
          f"{args.runs} runs (each run's figures in brackets)", flush=True)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as scratch_root:
        source = trajectories_for_the_store(Path(scratch_root)) if "store" in parts else None
        for label, root in trees.items():
            scratch = Path(scratch_root) / label
            scratch.mkdir()
            results[label] = measure(Tree(label, root, scratch), args.runs, parts, source)
    names = list(dict.fromkeys(name for figures in results.values() for name in figures))
    print_medians(results, names, width=58, digits=9)


if __name__ == "__main__":
    main()
