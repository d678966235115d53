"""The README's set-up commands: scripts/install.sh builds a venv without a `python` on PATH (a stock Debian has
only python3, and refuses system-wide pip), the commands use that venv, and CI runs the README's test command.

The full check on a fresh Debian 12 container is scripts/try_fresh_debian.sh (it needs its own networked engine).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def readme_setup_commands() -> list[str]:
    """The bash code blocks of the README's set-up section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)]


def test_readme_commands_use_the_venv_and_ci_runs_the_test_command():
    install_and_run, test_command = readme_setup_commands()
    assert install_and_run.startswith("bash scripts/install.sh && .venv/bin/python -m envs.run ")
    assert test_command == ".venv/bin/python -m pytest -q"
    # No bare `python` (a stock Debian has none): every python in the two commands is the venv's.
    for command in (install_and_run, test_command):
        assert re.findall(r"\S*python\S*", command) == [".venv/bin/python"]
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert ci_lines.index("bash scripts/install.sh") < ci_lines.index(test_command)
    assert ci_lines[-1] == test_command
    assert not [line for line in ci_lines if re.match(r"python3? ", line)]


def repo_copy(dest: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files (no .venv, no runs) under dest."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    return dest


def stock_path(tmp_path: Path) -> str:
    """PATH as on a stock Debian: a python3 >= 3.11, and a `python` that fails loudly if anything calls it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    trap = bin_dir / "python"
    trap.write_text("#!/bin/sh\necho 'python: command not found (stock Debian)' >&2\nexit 127\n")
    trap.chmod(0o755)
    return f"{bin_dir}:{SYSTEM_PATH}"


def install(repo: Path, path: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/install.sh"], cwd=repo, capture_output=True, text=True, timeout=280,
                          env={**os.environ, "PATH": path, **env})


def test_install_refuses_a_python_named_by_PYTHON_that_is_too_old(tmp_path):
    repo = repo_copy(tmp_path / "repo")
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\n# answers like a Python 3.9: the version check exits 1\nexit 1\n")
    old.chmod(0o755)
    done = install(repo, stock_path(tmp_path), PYTHON=str(old))
    assert done.returncode == 1, done.stderr
    assert f"PYTHON={old} is not a runnable Python >= 3.11" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (repo / ".venv").exists()


@pytest.mark.slow
def test_install_builds_a_venv_with_only_python3_on_path_and_reuses_it(tmp_path):
    repo = repo_copy(tmp_path / "repo")
    path = stock_path(tmp_path)

    first = install(repo, path)
    assert first.returncode == 0, first.stderr[-3000:]
    venv_python = repo / ".venv" / "bin" / "python"
    assert f"done: {repo}/.venv" in first.stderr
    probe = subprocess.run([str(venv_python), "-c", "import envs, sys; print(envs.__file__); print(sys.prefix)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True, env={**os.environ, "PATH": path})
    package_file, prefix = probe.stdout.split()
    assert Path(package_file).is_relative_to(repo)  # editable: the copy's own code (cwd is not on the way)
    assert Path(prefix) == repo / ".venv"
    for tool in ("pytest", "ruff"):  # the dev extras
        subprocess.run([str(venv_python), "-m", tool, "--version"], capture_output=True, check=True)

    started = time.monotonic()
    second = install(repo, path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "up to date" in second.stderr
    assert time.monotonic() - started < 15

    # A changed pyproject.toml is installed again into the same venv.
    with (repo / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# changed\n")
    third = install(repo, path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "installing the package" in third.stderr and "creating .venv" not in third.stderr
