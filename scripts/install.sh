#!/usr/bin/env bash
# Install everything the project and its tests need on a fresh Debian or Ubuntu machine (run as root for the
# system packages; without root only the Python part is done):
#   - bubblewrap, jq, bc, python3: the local sandbox (backend=local)
#   - docker.io, debootstrap: the project's own Docker engine and base image (backend=docker)
#   - chromium, fonts-liberation: Debian's Chromium, driven through Playwright (backend=browser; never
#     `playwright install`), and fonts so its screenshots show text
#   - a virtual environment in .venv (a stock Debian's python3 is externally managed, PEP 668) holding the
#     package, editable, with its dev extras; use it as .venv/bin/python, no activation needed
# Idempotent: a second run reuses the venv and skips pip unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP="$VENV/.safety-sandbox-install"
MIN_PYTHON=(3 11)

say() { echo "install.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

is_root_with_apt() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  say "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if is_root_with_apt; then
  wanted=(bubblewrap jq bc python3 docker.io debootstrap chromium fonts-liberation)
  missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
else
  say "not root (or no apt-get): skipping system packages; backend=local needs bubblewrap, backend=docker docker.io," \
    "backend=browser chromium"
fi

new_enough() { "$1" -c "import sys; sys.exit(sys.version_info[:2] < (${MIN_PYTHON[0]}, ${MIN_PYTHON[1]}))" 2>/dev/null; }

# The first Python >= 3.11 on PATH (a stock Debian has python3 but no `python`).
find_python() {
  local candidate
  for candidate in python3 python3.13 python3.12 python3.11 python; do
    if command -v "$candidate" >/dev/null 2>&1 && new_enough "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# Where the venv finds the package (without importing it): this checkout once the editable install is in place.
PACKAGE_ROOT='import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("envs").origin).parents[1])'

# The venv is up to date when its python runs, the package imports from this checkout, and pyproject.toml is
# the one it was installed from.
venv_current() {
  [ -x "$VENV/bin/python" ] && new_enough "$VENV/bin/python" && [ -f "$STAMP" ] \
    && [ "$(cat "$STAMP")" = "$(sha256sum pyproject.toml | cut -d' ' -f1)" ] \
    && [ "$("$VENV/bin/python" -c "$PACKAGE_ROOT" 2>/dev/null)" = "$PWD" ]
}

if venv_current; then
  say "up to date: $PWD/$VENV (run the project with $VENV/bin/python)"
  exit 0
fi

# Reuse a venv whose python runs, is new enough and has pip; anything else (a half-made or moved one) is rebuilt.
if ! { [ -x "$VENV/bin/python" ] && new_enough "$VENV/bin/python" && "$VENV/bin/python" -c "import pip" 2>/dev/null; }; then
  if [ -n "${PYTHON:-}" ]; then
    new_enough "$PYTHON" || die "PYTHON=$PYTHON is not a runnable Python >= ${MIN_PYTHON[0]}.${MIN_PYTHON[1]}"
    python=$(command -v "$PYTHON")
  else
    python=$(find_python) || die "needs Python >= ${MIN_PYTHON[0]}.${MIN_PYTHON[1]} (python3 here:" \
      "$(python3 --version 2>/dev/null || echo none)); install one (Ubuntu 22.04: apt-get install python3.11" \
      "python3.11-venv) or name it with PYTHON=/path/to/python"
  fi
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) separately, in pythonX.Y-venv.
  if ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
    is_root_with_apt || die "$python lacks the venv module's ensurepip; as root: apt-get install python${version}-venv"
    apt_install "python${version}-venv"
  fi
  rm -rf "$VENV"
  say "creating $VENV with $python (Python $version)"
  "$python" -m venv "$VENV"
fi

say "installing the package (editable, with dev extras) into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
sha256sum pyproject.toml | cut -d' ' -f1 >"$STAMP"
say "done: $PWD/$VENV (run the project with $VENV/bin/python)"
