"""Print what a shell sandbox costs per episode and per command, for the docker and local providers.

    eval "$(bash sandbox_images/engine.sh)"   # the docker provider needs the engine
    python -m benchmarks.bench_sandboxes [--pooled 30] [--fresh 10] [--commands 30]

Per episode: docker from the warm pool (acquire + reset + release), docker with a fresh container each time
(create + start + reset + remove, i.e. `docker run`), local (acquire + reset + close). Per command: an
`exec("true")` round trip, and the read-back of the files after a command. The seed is the KPI clinic
scenario's work dir. Figures are wall-clock on this machine.
"""

from __future__ import annotations

from benchmarks.timing import describe, timed
from envs.cli_args import OneLineArgumentParser, positive_int
from envs.sandbox import SandboxSpec, get_provider
from scenarios.registry import select

SPEC = SandboxSpec()


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_sandboxes",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--pooled", type=positive_int, default=30)
    parser.add_argument("--fresh", type=positive_int, default=10)
    parser.add_argument("--commands", type=positive_int, default=30)
    args = parser.parse_args(argv)
    files = next(s for s in select("kpi") if s.id == "kpi/clinic-wait-times").world.files.files

    docker = get_provider("docker")
    docker.check()
    docker.release(docker.acquire(SPEC))  # warm the pool (and build the base image if needed)

    def pooled_episode() -> None:
        sandbox = docker.acquire(SPEC)
        sandbox.reset(files)
        docker.release(sandbox)

    def fresh_episode() -> None:
        sandbox = docker.create(SPEC)
        sandbox.reset(files)
        sandbox.close()

    local = get_provider("local")
    local.check()

    def local_episode() -> None:
        sandbox = local.acquire(SPEC)
        sandbox.reset(files)
        local.release(sandbox)

    describe("docker episode, warm pool (acquire+reset+release)", timed(pooled_episode, args.pooled))
    describe("docker episode, fresh container (create..remove)", timed(fresh_episode, args.fresh))
    describe("local episode (acquire+reset+close)", timed(local_episode, args.pooled))

    for name, provider in (("docker", docker), ("local", local)):
        sandbox = provider.acquire(SPEC)
        sandbox.reset(files)
        describe(f"{name} exec('true')", timed(lambda s=sandbox: s.exec("true"), args.commands))
        describe(f"{name} snapshot_files (KPI work dir)", timed(sandbox.snapshot_files, args.commands))
        provider.release(sandbox)


if __name__ == "__main__":
    main()
