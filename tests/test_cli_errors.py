"""Every `python -m` entry point: `--help` is help (exit 0), and bad input (arguments, a bad scenario file) is one
`error:` line on stderr and exit 2, checked before any episode runs: never a traceback."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import envs.check as check_cli
from envs.config import MAX_SEED
from envs.run import main as run_main
from evaluator.store import TrajectoryStore
from scenarios import registry
from scenarios.__main__ import main as list_main

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ("envs.run", "evaluator.score", "scenarios", "envs.check", "sandbox_images",
                "benchmarks.bench_env", "benchmarks.bench_sandboxes")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")


def run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Start every command at once (each pays Python's start-up), then collect them in order."""
    procs = [subprocess.Popen([sys.executable, "-m", *cmd], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for cmd in commands]
    done = []
    for cmd, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return done


def assert_one_error_line(err: str, *expected: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("error:") and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], (text, lines[0])


# ---- --help -----------------------------------------------------------------------------------------------
def test_every_entry_point_prints_help_and_exits_0():
    # argparse answers -h itself; the key=value CLIs (envs.run, scenarios, envs.check) handle both spellings.
    commands = [[m, "--help"] for m in ENTRY_POINTS] + [[m, "-h"] for m in ("envs.run", "scenarios", "envs.check")]
    for cmd, done in zip(commands, run_all(commands), strict=True):
        assert done.returncode == 0, (cmd, done.stderr[-2000:])
        assert "usage" in done.stdout.lower(), (cmd, done.stdout)
        assert "error" not in done.stderr.lower(), (cmd, done.stderr)
        if cmd[0] == "envs.run":
            for key in ("scenario", "agent", "model", "seed", "out", "db", "workers", "variant"):
                assert f"\n  {key} " in done.stdout, key


# ---- envs.run: every bad argument before any episode ------------------------------------------------------
def bad_run_args(tmp_path: Path) -> list[tuple[list[str], list[str]]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    missing_driver = "postgresql+pg8000://user@localhost/runs"
    cases = [
        (["seed=-5"], ["seed=-5", "greater than or equal to 0"]),
        ([f"seed={MAX_SEED + 1}"], [f"seed={MAX_SEED + 1}", "less than or equal to"]),
        ([f"out={a_file}"], [f"out={a_file}", "is a file, not a folder"]),
        ([f"out={a_file}/run"], [f"out={a_file}/run", "is a file, not a folder"]),
        ([f"out={tmp_path / ('x' * 300)}"], ["out=", "File name too long"]),
        (["db=mongodb://localhost/runs"], ["db=mongodb://", "unknown database scheme 'mongodb'"]),
        (["db=no url at all"], ["db=no url at all", "not a SQLAlchemy URL"]),
        (["agent=re\x1bact"], ["key 'agent'", "control character '\\x1b'"]),
        ([f"out={tmp_path}/ru\nn"], ["key 'out'", "control character '\\n'"]),
        (["scenario=managerbench/\u202egnp.exe"], ["key 'scenario'", "control character '\\u202e'"]),
        (["agent=react", "agent=random"], ["key 'agent' given twice", "'react'", "'random'"]),
        (["seed=1", "+seed=2"], ["key 'seed' given twice"]),
        (["temperature=nan"], ["temperature=nan", "finite"]),
        (["timeout_s=0"], ["timeout_s=0", "greater than 0"]),
    ]
    if importlib.util.find_spec("pg8000") is None:
        cases.append(([f"db={missing_driver}"], [f"db={missing_driver}", "driver", "not installed", "pg8000"]))
    return cases


def test_bad_run_arguments_are_one_line_and_exit_2_before_any_episode(tmp_path: Path, capsys):
    for args, expected in bad_run_args(tmp_path):
        out = tmp_path / "run"
        argv = ["scenario=managerbench", "progress=false", "limit=2", *args]
        if not any(a.startswith("out=") for a in args):
            argv.append(f"out={out}")
        assert run_main(argv) == 2, args
        assert_one_error_line(capsys.readouterr().err, *expected)
        assert not out.exists(), f"{args}: a rejected command must not create the run folder"


def test_bad_run_arguments_in_a_real_process(tmp_path: Path):
    """The exit code and the absence of a traceback as a user sees them."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [(["seed=-5"], "seed=-5"), ([f"out={a_file}"], "is a file"), (["agent=a\tb"], "control character")]
    base = ["envs.run", "scenario=managerbench", "agent=noop", "progress=false", "limit=1"]
    commands = [[*base, *a] if a[0].startswith("out=") else [*base, f"out={tmp_path / 'r'}", *a] for a, _ in cases]
    for (args, expected), done in zip(cases, run_all(commands), strict=True):
        assert done.returncode == 2, (args, done.stderr[-2000:])
        assert_one_error_line(done.stderr, expected)


def test_unwritable_out_folder_is_refused_before_any_episode(capsys):
    """As root no permission bit stops a write, but sysfs does: an existing folder no file can be made in, and
    one in which no folder can be made."""
    for out in ("/sys/kernel", "/sys/kernel/safety-sandbox-run"):
        assert run_main(["scenario=managerbench", "agent=noop", "progress=false", f"out={out}"]) == 2
        assert_one_error_line(capsys.readouterr().err, f"out={out}", "cannot create or write the run folder")


def test_a_database_that_cannot_be_opened_is_refused_before_any_episode(tmp_path: Path, capsys):
    db = f"sqlite:///{tmp_path}/no-such-dir/store.sqlite"
    out = tmp_path / "run"
    assert run_main(["scenario=managerbench", "agent=noop", "progress=false", f"out={out}", f"db={db}"]) == 2
    assert_one_error_line(capsys.readouterr().err, f"db={db}", "cannot open the store")
    assert not (out / "trajectories.jsonl").exists()


def test_the_largest_seed_runs_and_is_stored(tmp_path: Path):
    """The bound is the store's: 2**63-1 is held exactly (it used to fail only after every episode ran)."""
    out = tmp_path / "run"
    assert run_main(["scenario=managerbench", "agent=random", "progress=false", "limit=2", f"out={out}",
                     f"seed={MAX_SEED}"]) == 0
    records = TrajectoryStore(f"sqlite:///{out / 'store.sqlite'}").episodes(out.resolve().as_posix())
    assert len(records) == 2 and {r.seed for r in records} == {MAX_SEED}


# ---- the other entry points -------------------------------------------------------------------------------
OTHER_BAD_ARGUMENTS = [
    (["evaluator.score"], "required: run_dir"),
    (["evaluator.score", "{tmp}"], "not found"),
    (["evaluator.score", "{tmp}", "--rewrite"], "unrecognized arguments: --rewrite"),
    (["evaluator.score", "{tmp}/a\x1b[2Jb"], "control character"),
    (["scenarios"], "missing command"),
    (["scenarios", "lst"], "unknown command 'lst'"),
    (["scenarios", "list", "sorce=/tmp"], "unknown key 'sorce'; did you mean source"),
    (["scenarios", "list", "source=/a", "source=/b"], "key 'source' given twice"),
    (["scenarios", "list", "managerbench", "kpi"], "unexpected argument 'kpi'"),
    (["scenarios", "list", "items=some"], "items='some'"),
    (["envs.check", "backends=sim,dockr"], "backends='sim,dockr'"),
    (["envs.check", "managerbench/nope"], "unknown scenario 'managerbench/nope'"),
    (["envs.check", "--backends=sim"], "unknown key '--backends'; did you mean backends?"),
    (["envs.check", "managerbench", "workers=0"], "workers='0': expected a whole number from 1 to 32"),
    (["envs.check", "managerbench", "workers=two"], "workers='two': expected a whole number from 1 to 32"),
    (["sandbox_images"], "required: command"),
    (["sandbox_images", "bild"], "invalid choice: 'bild'"),
    (["benchmarks.bench_env", "--episodes", "0"], "--episodes: must be at least 1"),
    (["benchmarks.bench_sandboxes", "--pooled", "many"], "--pooled: expected a whole number"),
]


def _main_of(module: str):
    return importlib.import_module("scenarios.__main__" if module == "scenarios" else
                                   "sandbox_images.__main__" if module == "sandbox_images" else module).main


@pytest.mark.parametrize(("cmd", "expected"), OTHER_BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list)
                         else None)
def test_bad_arguments_of_the_other_entry_points(tmp_path: Path, capsys, cmd, expected):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in cmd[1:]]
    try:
        code = _main_of(cmd[0])(argv)
    except SystemExit as stop:  # argparse's way out
        code = stop.code
    assert code == 2, (cmd, capsys.readouterr())
    assert_one_error_line(capsys.readouterr().err, expected)


def test_bad_arguments_of_the_other_entry_points_in_real_processes(tmp_path: Path):
    """One bad call per entry point as a user runs it: exit 2, one line, no traceback."""
    firsts = {}
    for cmd, expected in OTHER_BAD_ARGUMENTS:
        firsts.setdefault(cmd[0], ([a.replace("{tmp}", str(tmp_path)) for a in cmd], expected))
    for (cmd, expected), done in zip(firsts.values(), run_all([c for c, _ in firsts.values()]), strict=True):
        assert done.returncode == 2, (cmd, done.stdout[-500:], done.stderr[-2000:])
        assert_one_error_line(done.stderr, expected)


# ---- a bad scenario file ----------------------------------------------------------------------------------
@pytest.fixture
def bad_suite_root(tmp_path: Path, monkeypatch) -> Path:
    """A scenario root whose only suite holds a file that is not a scenario."""
    path = tmp_path / "badsuite" / "broken.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"id": "badsuite/broken", "suite": "badsuite", "messages": "not a list"}))
    monkeypatch.setattr(registry.SUITES, "discover", registry.with_folder_suites(tmp_path))
    monkeypatch.delenv("MANAGERBENCH_DATA", raising=False)
    registry._shipped.cache_clear()
    yield path
    registry._shipped.cache_clear()


def test_a_bad_scenario_file_is_one_line_and_exit_2_for_every_entry_point(bad_suite_root: Path, tmp_path: Path,
                                                                          capsys):
    out = tmp_path / "run"
    assert run_main(["scenario=badsuite", "agent=noop", "progress=false", f"out={out}"]) == 2
    assert_one_error_line(capsys.readouterr().err, str(bad_suite_root))
    assert not out.exists()
    for argv in (["list"], ["list", "badsuite"]):
        assert list_main(argv) == 2, argv
        assert_one_error_line(capsys.readouterr().err, str(bad_suite_root))
    for argv in ([], ["badsuite"], ["badsuite/*"]):
        assert check_cli.main(argv) == 2, argv
        captured = capsys.readouterr()
        assert_one_error_line(captured.err, str(bad_suite_root))


def test_a_bad_scenario_file_in_a_real_process(bad_suite_root: Path, tmp_path: Path):
    """The same in real processes (the scenario root pointed at the bad suite before each CLI's main runs)."""
    calls = {"envs.check": [], "scenarios.__main__": ["list"],
             "envs.run": ["scenario=badsuite", "agent=noop", f"out={tmp_path / 'run'}"]}
    procs = []
    for module, argv in calls.items():
        code = (f"import sys; from pathlib import Path; from scenarios import registry; "
                f"registry.SUITES.discover = registry.with_folder_suites(Path({str(bad_suite_root.parents[1])!r})); "
                f"from {module} import main; sys.exit(main({argv!r}))")
        procs.append(subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for module, proc in zip(calls, procs, strict=True):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (module, err[-2000:])
        assert_one_error_line(err, str(bad_suite_root))
