"""The import layers hold and no module imports itself round a loop (the contracts live in .importlinter)."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".importlinter"
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def _config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser


def _root_packages() -> list[str]:
    return _config()["importlinter"]["root_packages"].split()


def _layer_modules() -> list[str]:
    """Every module named in the layers contract (a layer is `a : b : c`)."""
    layers = _config()["importlinter:contract:layers"]["layers"].split("\n")
    return [m.strip() for line in layers for m in re.split(r"[:|]", line) if m.strip()]


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*_root_packages(), cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Each set of modules that import one another round a loop (strongly connected components, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while (member := stack.pop()) != module:
                on_stack.discard(member)
                component.append(member)
            on_stack.discard(module)
            component.append(module)
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def _loop_through(graph: grimp.ImportGraph, component: list[str]) -> str:
    """One concrete loop in a cycle, for the message: a -> b -> ... -> a."""
    start = component[0]
    step = next(m for m in sorted(graph.find_modules_directly_imported_by(start)) if m in component)
    chain = graph.find_shortest_chain(importer=step, imported=start) or (step, start)
    return " -> ".join([start, *chain])


def _run_lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the packages under `root`, not the installed ones
    return subprocess.run([*LINT_IMPORTS, str(root / ".importlinter"), "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    done = _run_lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout  # both ran: a contract that did not load is not kept


def test_no_module_imports_itself_round_a_loop():
    graph = _graph()
    loops = [_loop_through(graph, component) for component in _cycles(graph)]
    assert not loops, "import cycles:\n" + "\n".join(loops)


def test_the_cycle_check_finds_a_planted_cycle():
    graph = _graph()
    graph.add_import(importer="records.trajectory", imported="evaluator.score")  # evaluator.score reads trajectories
    components = _cycles(graph)
    assert any({"records.trajectory", "evaluator.score"} <= set(c) for c in components)
    loop = next(_loop_through(graph, c) for c in components if "records.trajectory" in c)
    assert loop.startswith(loop.split(" -> ")[-1])  # a closed loop, named module by module


def test_every_module_is_in_a_layer():
    """A module in no layer would escape the contract; only the `envs` package itself (it registers the Gymnasium
    id) sits outside, and it imports nothing of the project."""
    layers = _layer_modules()
    graph = _graph()
    outside = sorted(m for m in graph.modules if not any(m == layer or m.startswith(layer + ".") for layer in layers))
    assert outside == ["envs"]
    assert not graph.find_modules_directly_imported_by("envs")


@pytest.mark.parametrize(("module", "planted", "broken"), [
    ("records/trajectory.py", "import evaluator.score", "records.trajectory -> evaluator.score"),  # world -> evaluator
    ("scenarios/loader.py", "import envs.env", "scenarios.loader -> envs.env"),  # scenarios -> env
    ("agents/base.py", "import envs.runner", "agents.base -> envs.runner"),  # agents -> run
])
def test_the_layers_contract_refuses_an_upward_import(tmp_path, module, planted, broken):
    for package in _root_packages():
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    done = _run_lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "Layers: foundation" in done.stdout and "BROKEN" in done.stdout
    assert broken in done.stdout.replace("\n", " ")
