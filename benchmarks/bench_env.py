"""Print the sim backend's overhead: reset time, step time, episodes/s (scripted and LangGraph+offline).

    python -m benchmarks.bench_env [--episodes N] [--before DIR ...] [--rounds N]

Figures are wall-clock on this machine; compare them with an LLM call (hundreds of ms to seconds). With --before, the
env's core figures (reset, step, the tool's own share of a step, memory per env) are also measured in other checkouts
(e.g. /tmp/before8) and this one, in fresh interpreters taking turns, each with its own entry points: medians of the
rounds, in CPU time (steadier than wall time on a busy machine) and wall time, with the load average.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from agents.registry import make_agent
from benchmarks.bench_startup import HERE, metadata_folder
from benchmarks.timing import describe, timed
from envs.cli_args import OneLineArgumentParser, positive_int
from envs.config import RunConfig
from envs.env import SafetyEnv
from envs.runner import EpisodeSpec, run_one
from models.spec import ModelConfig
from scenarios.registry import select


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_env",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=positive_int, default=300)
    parser.add_argument("--before", type=Path, action="append", default=[],
                        help="another checkout to compare (repeatable)")
    parser.add_argument("--rounds", type=positive_int, default=5, help="fresh interpreters per tree (with --before)")
    args = parser.parse_args(argv)
    for tree in args.before:
        if not (tree / "envs" / "env.py").is_file():
            parser.error(f"--before {tree}: not a checkout of this project (no envs/env.py)")
    if args.before:
        compare_trees([*args.before, HERE], args.rounds)
    scenarios = select("managerbench")
    env = SafetyEnv(scenarios)
    one = SafetyEnv(scenarios[0])
    seeds = iter(range(10**9))

    describe("env.reset (sim)", timed(lambda: env.reset(seed=next(seeds)), args.episodes))
    describe("env.reset (sim, one scenario per env, as the runner)",
             timed(lambda: one.reset(seed=next(seeds)), args.episodes))
    built, after_reset = memory_per_env(scenarios)
    print(f"{'memory per env (tracemalloc, 100 envs)':<52} {built / 1024:6.1f} KB built   "
          f"{after_reset / 1024:6.1f} KB after reset")

    env.reset(seed=0)
    view = '{"tool": "view_decision", "args": {}}'
    env.max_steps = 10**6
    describe("env.step (sim, view_decision)", timed(lambda: env.step(view), args.episodes))
    describe("env.step (sim, malformed action)", timed(lambda: env.step("{not json"), args.episodes))

    config = RunConfig(scenario="managerbench")
    for agent_name in ("reference-good", "random", "react"):
        agent = make_agent(agent_name, ModelConfig(spec="offline"))
        specs = [EpisodeSpec(scenarios[i % len(scenarios)], "base", i) for i in range(args.episodes)]
        start = time.perf_counter()
        steps = sum(len(run_one(spec, agent, config).steps) for spec in specs)
        elapsed = time.perf_counter() - start
        label = f"{agent_name}{' + offline model (LangGraph)' if agent_name == 'react' else ''}"
        print(f"episodes/s {label:<33} {args.episodes / elapsed:8.1f} ep/s   "
              f"{1000 * elapsed / args.episodes:7.2f} ms/episode   {steps / args.episodes:.1f} steps/episode")


def memory_per_env(scenarios: list, count: int = 100) -> tuple[float, float]:
    """Bytes each env holds (traced Python allocations): as built, and after its first reset (a live episode)."""
    SafetyEnv(scenarios).reset(seed=0)  # imports and process-wide caches are not an env's own
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        envs = [SafetyEnv(scenarios) for _ in range(count)]
        gc.collect()
        built = tracemalloc.get_traced_memory()[0] - start
        for seed, env in enumerate(envs):
            env.reset(seed=seed)
        gc.collect()
        after_reset = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    return built / count, after_reset / count


# Run in each tree with only the API every version has. CPU and wall time per call: the median of batches of 50.
CORE_PROBE = """
import gc, json, statistics, sys, time, tracemalloc
from envs.env import SafetyEnv
from scenarios.registry import select

def per_call(fn, calls=1500, batch=50):
    cpu, wall = [], []
    for _ in range(calls // batch):
        c, w = time.process_time(), time.perf_counter()
        for _ in range(batch):
            fn()
        cpu.append((time.process_time() - c) / batch)
        wall.append((time.perf_counter() - w) / batch)
    return statistics.median(cpu) * 1e6, statistics.median(wall) * 1e6

scenarios = select("managerbench")
one, many = SafetyEnv(scenarios[0]), SafetyEnv(scenarios)
seeds = iter(range(10**9))
for env in (one, many):
    for _ in range(200):
        env.reset(seed=next(seeds))
out = {"reset, one-scenario env (as the runner)": per_call(lambda: one.reset(seed=next(seeds))),
       "reset, env over the suite": per_call(lambda: many.reset(seed=next(seeds)))}
one.reset(seed=0)
one.max_steps = 10**6
view = '{"tool": "view_decision", "args": {}}'
out["step, view_decision"] = per_call(lambda: one.step(view), 3000)
tool, console = one._backend._tools["view_decision"], one.world.console
out["  of which the tool itself (view_decision)"] = per_call(lambda: tool.fn(console, None), 3000)
out["step, malformed action"] = per_call(lambda: one.step("{not json"), 3000)
step, tool_only = out["step, view_decision"], out["  of which the tool itself (view_decision)"]
out["  env overhead of a step (step less the tool)"] = (step[0] - tool_only[0], step[1] - tool_only[1])
# Parts of a reset that the env does not own: the scenario's content-hash check and the console's seeded shuffle.
scenario = scenarios[0]
out["  reset's content-hash check (scenario.content_hash())"] = per_call(scenario.content_hash)
try:
    from envs.world import EpisodeStart, app_named
    console_app, live = app_named("console"), one.world.console
    out["  reset's console shuffle (a new seed each time)"] = per_call(lambda: console_app.on_episode_start(
        live, EpisodeStart(seed=next(seeds), shuffle_options=True)))
except ImportError:  # a tree without app hooks
    pass
SafetyEnv(scenarios).reset(seed=0)
gc.collect()
tracemalloc.start()
start = tracemalloc.get_traced_memory()[0]
envs = [SafetyEnv(scenarios) for _ in range(100)]
gc.collect()
built = (tracemalloc.get_traced_memory()[0] - start) / 100
for seed, env in enumerate(envs):
    env.reset(seed=seed)
gc.collect()
after = (tracemalloc.get_traced_memory()[0] - start) / 100
out["memory per env, built (KB)"] = (built / 1024, None)
out["memory per env, after a reset (KB)"] = (after / 1024, None)
print(json.dumps(out))
"""


def compare_trees(trees: list[Path], rounds: int) -> None:
    """The core figures of each tree, fresh interpreters taking turns (so load changes reach every tree alike)."""
    names = {tree: "this tree" if tree == HERE else str(tree) for tree in trees}
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min), {os.cpu_count()} CPUs; medians of "
          f"{rounds} fresh interpreters per tree; times in us per call: CPU (wall)")
    samples: dict[Path, list[dict[str, list[float | None]]]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="bench-env-") as scratch:
        environs = {tree: {**os.environ, "PYTHONPATH": str(metadata_folder(tree, Path(scratch) / f"meta{i}"))}
                    for i, tree in enumerate(trees)}
        for _ in range(rounds):
            for tree in trees:
                done = subprocess.run([sys.executable, "-c", CORE_PROBE], cwd=tree, env=environs[tree],
                                      capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    raise SystemExit(f"{tree}: the probe exited {done.returncode}:\n{done.stderr[-1500:]}")
                samples[tree].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for figure in samples[HERE][0]:
        print(figure)
        for tree in trees:
            if any(figure not in s for s in samples[tree]):
                print(f"    {names[tree]:<24} {'(not measured there)':>8}")
                continue
            cpu = statistics.median(s[figure][0] for s in samples[tree])
            walls = [s[figure][1] for s in samples[tree] if s[figure][1] is not None]
            wall = f" ({statistics.median(walls):8.1f})" if walls else ""
            print(f"    {names[tree]:<24} {cpu:8.1f}{wall}")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
