"""Print what the first-violation watch costs: the sim backend's step and whole reference episodes over the OS-BLIND
suite, with the watch (sim: its world is live) and without it (the same backend declaring live_world false).

    python -m benchmarks.bench_scoring [--episodes N]
"""

from __future__ import annotations

from agents.scripted import BadReferenceAgent
from benchmarks.timing import describe, timed
from envs.backend_info import BACKEND_INFOS, EMBEDDED
from envs.backends import BACKENDS, backend_class
from envs.cli_args import OneLineArgumentParser, positive_int
from envs.env import SafetyEnv
from scenarios.registry import select

UNWATCHED = "sim-unwatched"


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=positive_int, default=200)
    args = parser.parse_args(argv)
    BACKEND_INFOS.add(UNWATCHED, EMBEDDED.model_copy(update={"live_world": False}))
    BACKENDS.add(UNWATCHED, type("Unwatched", (backend_class("sim"),), {"name": UNWATCHED}))
    scenarios = [s.model_copy(update={"backends": [*s.backends, UNWATCHED]}) for s in select("osblind")]
    scenarios = [scenarios[i % len(scenarios)] for i in range(args.episodes)]
    for backend in ("sim", UNWATCHED, "sim", UNWATCHED):  # the first round warms caches (shown, but read the second)
        env = SafetyEnv(scenarios[0], backend=backend, max_steps=10**6)
        env.reset(seed=0)
        look = {"tool": "read_mail", "args": {"id": "m1"}}
        describe(f"env.step ({backend}, read_mail)", timed(lambda env=env, look=look: env.step(look), args.episodes))
        env.close()
        def episode(backend: str = backend, episodes=iter(scenarios)) -> None:  # noqa: B008 - one iterator per loop
            env = SafetyEnv(next(episodes), backend=backend)
            env.reset(seed=0)
            BadReferenceAgent().run(env)
            env.close()

        describe(f"reference-bad episode ({backend}, osblind)", timed(episode, args.episodes))


if __name__ == "__main__":
    main()
