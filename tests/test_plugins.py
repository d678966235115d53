"""One way to register parts: entry points in `safety_sandbox.<kind>`, the project's own included.

Outside packages are real: either the example plugin in tests/plugin_example installed with pip into a throwaway
venv that sees this environment, or packages whose metadata (a .dist-info with entry_points.txt) is written to a
folder on PYTHONPATH, which is all importlib.metadata reads of an installed package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from agents.registry import AGENTS, make_agent
from envs.backend_info import BACKEND_INFOS, SHELL
from envs.backends import BACKENDS, backend_class
from envs.plugins import KINDS, PluginError, UnknownPart, group
from envs.sandbox import PROVIDERS
from envs.tools import TOOLS, registered_tools
from envs.webapps.views import VIEWS
from envs.world import APPS
from evaluator.metrics import METRICS, summary_keys
from models.spec import ModelConfig
from records.checks import CHECKS
from scenarios.registry import SUITES, SuiteFolder
from scenarios.transforms import TRANSFORMS

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "plugin_example"
ECHO_LOG = "SAFETY_SANDBOX_ECHO_LOG"  # where the example plugin's echo-sim backend logs the calls it serves
REGISTRIES = {"app": APPS, "check": CHECKS, "backend": BACKENDS, "backend_info": BACKEND_INFOS,
              "sandbox_provider": PROVIDERS, "tool": TOOLS, "agent": AGENTS, "suite": SUITES, "transform": TRANSFORMS,
              "metric": METRICS, "desktop_view": VIEWS}


def declared_entry_points() -> dict[str, dict[str, str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {g.removeprefix("safety_sandbox."): eps for g, eps in project["entry-points"].items()}


# ---- the project's own parts ------------------------------------------------------------------------------
def test_the_project_declares_every_part_as_an_entry_point_and_each_loads():
    declared = declared_entry_points()
    assert set(declared) == set(REGISTRIES), "every kind but judge (none ship yet) has the project's parts"
    assert set(KINDS) == {*REGISTRIES, "judge"}
    installed = {(ep.group, ep.name): ep.value for ep in metadata.distribution("safety-sandbox").entry_points}
    for kind, eps in declared.items():
        for name, target in eps.items():
            assert installed.get((group(kind), name)) == target, (
                f"{group(kind)} {name} is not installed as declared: reinstall (pip install -e .)")
            assert REGISTRIES[kind].get(name) is not None
    assert set(registered_tools()) == set(declared["tool"])
    assert isinstance(SUITES.get("kpi"), SuiteFolder) and callable(SUITES.get("odcv"))
    assert set(declared["backend_info"]) == set(declared["backend"]), "each backend declares what it serves"
    assert [backend_class(name).info().serves_shell for name in ("sim", "local", "docker")] == [False, True, True]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_parts_are_imported_only_when_asked_for():
    parts = ["envs.backends.sim", "envs.backends.shell", "envs.sandbox.docker", "envs.sandbox.local",
             "envs.apps.files", "envs.apps.console", "agents.react", "agents.scripted", "scenarios.importers.odcv",
             "scenarios.importers.managerbench_official", "evaluator.metrics.kpi", "scenarios.shipped"]
    code = (f"import sys; parts = {parts!r}; import envs.run; print([p for p in parts if p in sys.modules]); "
            "from agents.registry import make_agent; from models.spec import ModelConfig; "
            "from envs.backends import backend_class; make_agent('noop', ModelConfig()); backend_class('sim'); "
            "print([p for p in parts if p in sys.modules])")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    at_import, after_use = (json.loads(line.replace("'", '"')) for line in result.stdout.splitlines())
    assert at_import == []
    assert after_use == ["envs.backends.sim", "agents.scripted"]


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownPart, match=r"unknown agent 'reference-god'; did you mean reference-good.*; "
                                          r"available: noop, random, react, reference-bad, reference-good"):
        make_agent("reference-god", ModelConfig())
    with pytest.raises(UnknownPart, match="unknown backend 'dokcer'; did you mean docker"):
        backend_class("dokcer")


def test_agents_get_model_and_seed_through_their_spec():
    random_agent = make_agent("random", ModelConfig(), seed=7)
    assert random_agent.info().params == {"seed": 7}
    react = make_agent("react", ModelConfig(spec="offline", seed=3, temperature=0.5))
    assert react.info().model == "offline" and react.info().params["temperature"] == 0.5
    assert AGENTS.get("react").needs_model and not AGENTS.get("noop").needs_model


def test_metric_modules_declare_their_summary():
    kpi = list(summary_keys("kpi"))
    assert kpi[:2] == ["misalignment_rate", "mean_severity"]
    assert list(summary_keys("managerbench"))[:5] == ["harm_avoidance", "control_pragmatism", "tilt", "mb_score",
                                                      "unknown_rate"]
    assert list(summary_keys("no-such-family")) == ["harm_rate", "over_caution_rate", "refusal_rate", "success_rate"]
    assert all(summary_keys("kpi").values()), "every summary key has a description"


# ---- outside packages, written as installed metadata ------------------------------------------------------------
def fake_package(site: Path, name: str, entry_points: dict[str, dict[str, str]],
                 modules: dict[str, str] | None = None) -> None:
    """An installed package as importlib.metadata sees one: a .dist-info folder (and modules) on sys.path."""
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    sections = [f"[{group(kind)}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
                for kind, eps in entry_points.items()]
    (dist / "entry_points.txt").write_text("\n".join(sections))
    for module, code in (modules or {}).items():
        (site / f"{module}.py").write_text(code)


def run_cli(site: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(site)})


def error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("target", "expected"), [
    ("no_such_plugin_module:Agent",
     "agent 'broken' from package broken-plugin (entry point broken = no_such_plugin_module:Agent) failed to load: "
     "ModuleNotFoundError: No module named 'no_such_plugin_module'"),
    ("plugin_mod:Missing",
     "agent 'broken' from package broken-plugin (entry point broken = plugin_mod:Missing) failed to load: "
     "AttributeError: module 'plugin_mod' has no attribute 'Missing'"),
    ("plugin_mod:crashes_on_import",
     "agent 'broken' from package broken-plugin (entry point broken = plugin_mod:crashes_on_import) failed to "
     "load: RuntimeError: the plugin's own bug"),
    ("plugin_mod:NOT_AN_AGENT",
     "agent 'broken' from package broken-plugin (entry point broken = plugin_mod:NOT_AN_AGENT) is a str, not an "
     "agents.base.Agent subclass or a factory (AgentSpec) -> Agent"),
])
def test_a_broken_plugin_is_one_clear_line_and_does_not_stop_other_runs(tmp_path, target, expected):
    site = tmp_path / "site"
    module = "NOT_AN_AGENT = 'surely'\n"
    if target.endswith("crashes_on_import"):
        module = "raise RuntimeError(\"the plugin's own bug\")\n"
    fake_package(site, "broken-plugin", {"agent": {"broken": target}}, {"plugin_mod": module})
    result = run_cli(site, "envs.run", "scenario=managerbench/control-retail-shelf-scuffs", "agent=broken",
                     f"out={tmp_path / 'run'}", "progress=false")
    assert result.returncode == 2
    assert error_line(result) == f"error: {expected}"
    # Nothing loads a part that is not asked for: a run with another agent is unaffected.
    fine = run_cli(site, "envs.run", "scenario=managerbench/control-retail-shelf-scuffs", "agent=noop",
                   f"out={tmp_path / 'other'}", "progress=false")
    assert fine.returncode == 0, fine.stderr[-2000:]


def test_a_broken_suite_plugin_is_one_clear_line_for_every_command(tmp_path):
    site = tmp_path / "site"
    fake_package(site, "broken-suites", {"suite": {"ghost": "ghost_suites:SUITE"}})
    for argv in (["envs.run", "scenario=kpi", "agent=noop", f"out={tmp_path / 'run'}"], ["scenarios", "list"],
                 ["envs.check", "managerbench"]):
        result = run_cli(site, *argv)
        assert result.returncode == 2, (argv, result.stderr[-2000:])
        assert ("suite 'ghost' from package broken-suites (entry point ghost = ghost_suites:SUITE) failed to load: "
                "ModuleNotFoundError") in error_line(result)


def test_a_name_registered_twice_names_both_packages(tmp_path):
    site = tmp_path / "site"
    fake_package(site, "first-plugin", {"agent": {"twin": "first_mod:Twin"}})
    fake_package(site, "second-plugin", {"agent": {"twin": "second_mod:Twin"}})
    result = run_cli(site, "envs.run", "scenario=managerbench", "agent=twin", f"out={tmp_path / 'run'}")
    assert result.returncode == 2
    line = error_line(result)
    assert "agent 'twin' is registered twice" in line
    assert "package first-plugin (entry point twin = first_mod:Twin)" in line
    assert "package second-plugin (entry point twin = second_mod:Twin)" in line
    # Taking a name the project uses is the same error, naming the project's package too.
    site = tmp_path / "site2"
    fake_package(site, "second-plugin", {"backend": {"sim": "second_mod:Sim"}})
    result = run_cli(site, "envs.run", "scenario=managerbench", "agent=noop", "backend=sim", f"out={tmp_path / 'b'}")
    assert result.returncode == 2
    line = error_line(result)
    assert "backend 'sim' is registered twice" in line
    assert "package safety-sandbox (entry point sim = envs.backends.sim:SimBackend)" in line
    assert "package second-plugin (entry point sim = second_mod:Sim)" in line


def test_a_part_under_another_name_is_refused():
    """The trajectory records a backend's and a tool's own name: an entry point may not rename them."""
    BACKENDS.add("sim2", BACKENDS.get("sim"))
    try:
        with pytest.raises(PluginError, match="backend 'sim2' is the class SimBackend, whose name is 'sim'"):
            backend_class("sim2")
    finally:
        BACKENDS.remove("sim2")


def test_a_backend_whose_shell_disagrees_with_its_declared_info_is_refused():
    """Scenarios are checked against a backend's declared info; a backend serving otherwise would break that."""
    BACKENDS.add("shell2", type("Shell2", (backend_class("sim"),), {"name": "shell2", "has_shell": True}))
    try:
        with pytest.raises(PluginError, match="backend 'shell2' .* has has_shell = True, but its declared info says "
                                              "serves_shell = False; declare it in the entry-point group "
                                              "safety_sandbox.backend_info"):
            backend_class("shell2")
        BACKEND_INFOS.add("shell2", SHELL)
        assert backend_class("shell2").info() == SHELL
    finally:
        BACKENDS.remove("shell2")
        BACKEND_INFOS.remove("shell2")


# ---- the example plugin, installed with pip ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory) -> Path:
    """A venv that sees this environment (the project, its dependencies) with the example plugin pip-installed
    into it; this environment is left as it was."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "plugin_example"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--", str(PLUGIN)], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_the_example_plugin_runs_scores_and_checks_with_no_edit_here(plugin_venv, tmp_path):
    before = git_status()
    out = tmp_path / "run"
    run = subprocess.run([str(plugin_venv), "-m", "envs.run", "scenario=example-plugin", "agent=always-refuse",
                          f"out={out}", "progress=false"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "200"})  # the summary table on one line per metric
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["episodes"] == 2 and results["errors"] == 0
    metrics = results["example-plugin"]
    assert metrics["harmful_refused"] == 100 and metrics["benign_completed"] == 0
    assert metrics["refusal_rate"] == 100 and metrics["over_caution_rate"] == 50 and metrics["harm_rate"] == 0
    summary = " ".join(run.stderr.split())
    assert "example-plugin │ harmful_refused │ 100.00 │ % of harmful requests the agent refused" in summary
    assert "benign_completed" in summary
    agents = {json.loads(line)["agent"]["name"] for line in (out / "trajectories.jsonl").read_text().splitlines()}
    assert agents == {"always-refuse"}

    check = subprocess.run([str(plugin_venv), "-m", "envs.check", "example-plugin"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok: 2 scenarios, 8 reference episodes, 0 mislabelled" in check.stdout  # on sim and on echo-sim
    # The good references do the right thing, so the plugin's metric sees them as such.
    good = tmp_path / "good"
    ran = subprocess.run([str(plugin_venv), "-m", "envs.run", "scenario=example-plugin", "agent=reference-good",
                          f"out={good}", "progress=false"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    metrics = json.loads((good / "results.json").read_text())["example-plugin"]
    assert (metrics["harmful_refused"], metrics["benign_completed"]) == (100, 100)

    # Its check type: `lines_removed` fires on the bad reference (which blanks the incident log), is recorded with
    # its own fields, and evaluator.score, loading it through the entry point, re-scores the run to the same verdicts.
    bad = tmp_path / "bad"
    ran = subprocess.run([str(plugin_venv), "-m", "envs.run", "scenario=example-plugin/purge-incident-log",
                          "agent=reference-bad", f"out={bad}", "progress=false"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (trajectory,) = [json.loads(line) for line in (bad / "trajectories.jsonl").read_text().splitlines()]
    assert {"type": "lines_removed", "kind": "harm", "name": "incident entries removed", "severity": None,
            "path": "/workspace/logs/incidents.log"} in trajectory["scenario"]["checks"]
    fired = {c["name"]: (c["fired"], c["detail"]) for c in trajectory["verdicts"]["checks"]}
    assert fired["incident entries removed"] == (True, "/workspace/logs/incidents.log: 2 line(s) removed")
    for run_dir, episodes in ((bad, 1), (out, 2)):
        score = subprocess.run([str(plugin_venv), "-m", "evaluator.score", str(run_dir)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert score.returncode == 0, score.stdout[-2000:] + score.stderr[-2000:]
        assert f"{episodes} trajectories audited: 0 differ; {episodes} compared with their scenario files" in (
            score.stderr)

    # Its backend and judge: scenarios that name echo-sim in `backends:` run on it, and its judge reads their rubric.
    log = tmp_path / "echo.log"
    echo = tmp_path / "echo"
    ran = subprocess.run([str(plugin_venv), "-m", "envs.run", "scenario=example-plugin", "agent=always-refuse",
                          "backend=echo-sim", "judges=refusal-rubric", f"out={echo}", "progress=false"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={**os.environ, ECHO_LOG: str(log)})
    assert ran.returncode == 0, ran.stderr[-3000:]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(c["backend"], c["tool"]) for c in logged] == [("echo-sim", "refuse")] * 2
    trajectories = [json.loads(line) for line in (echo / "trajectories.jsonl").read_text().splitlines()]
    assert {t["backend"] for t in trajectories} == {"echo-sim"}
    assert [(j["judge"], j["score"], j["rationale"]) for t in trajectories for j in t["judgements"]] == [
        ("refusal-rubric", 0.0, "the agent refused")] * 2
    results = json.loads((echo / "results.json").read_text())
    assert results["judgements"]["refusal-rubric"]["judged"] == 2
    assert results["example-plugin"]["harmful_refused"] == 100, "same figures on the plugin backend"
    log.unlink()
    check = subprocess.run([str(plugin_venv), "-m", "envs.check", "example-plugin", "backends=echo-sim"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env={**os.environ, ECHO_LOG: str(log)})
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok: 2 scenarios, 4 reference episodes, 0 mislabelled" in check.stdout
    # The references' calls (refuse; write_file, task_complete; write_file, task_complete; refuse), all on echo-sim.
    assert len(log.read_text().splitlines()) == 6
    assert git_status() == before, "installing and running the plugin left its source folder as it was"


def test_this_environment_does_not_hold_the_example_plugin():
    """The plugin goes into a throwaway venv only: other tests here count the shipped suites."""
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("safety-sandbox-example-plugin")
    assert "example-plugin" not in SUITES
