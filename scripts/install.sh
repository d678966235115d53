#!/usr/bin/env bash
# Install everything the project and its tests need on a fresh Debian machine (run as root for the
# system packages; without root only the Python package is installed):
#   - bubblewrap, jq, bc, python3: the local sandbox (backend=local)
#   - docker.io, debootstrap: the project's own Docker engine and base image (backend=docker)
#   - the Python package with its dev extras
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install.sh: $*" >&2; }

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  wanted=(bubblewrap jq bc python3 docker.io debootstrap)
  missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  say "not root (or no apt-get): skipping system packages; backend=local needs bubblewrap, backend=docker docker.io"
fi

python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
say "done"
