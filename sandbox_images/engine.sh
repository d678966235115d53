#!/usr/bin/env bash
# Start the project's own Docker engine (idempotent) for backend=docker.
#
#   bash sandbox_images/engine.sh            # then: export DOCKER_HOST=unix:///var/run/safety-sandbox/docker.sock
#   eval "$(bash sandbox_images/engine.sh)"  # the same, exported into this shell
#
# Installs Debian's docker.io (and debootstrap) when missing, then starts dockerd in the background on a socket
# and data root of ours (so it never touches a system engine), and waits until it answers. Only the
# `export` line goes to stdout; progress goes to stderr. Needs root.
set -euo pipefail

SOCKET_DIR=/var/run/safety-sandbox
SOCKET="unix://${SOCKET_DIR}/docker.sock"
DATA_ROOT=/var/lib/safety-sandbox-docker
EXEC_ROOT=/var/run/safety-sandbox/exec
PIDFILE=/var/run/safety-sandbox/dockerd.pid
LOG=/var/log/safety-sandbox-dockerd.log
WAIT_S="${SAFETY_SANDBOX_ENGINE_WAIT_S:-60}"

say() { echo "engine.sh: $*" >&2; }

answers() { timeout 10 docker -H "$SOCKET" info >/dev/null 2>&1; }

if answers; then
  say "the engine already answers on $SOCKET"
  echo "export DOCKER_HOST=$SOCKET"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "must run as root (dockerd needs it)"
  exit 1
fi

# docker.io brings dockerd, the CLI, containerd, runc and tini (docker-init); debootstrap builds the base
# image (python -m sandbox_images build).
missing=()
command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# A dockerd of ours that died leaves its pid file and socket behind; a live one we leave alone.
pid=""
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  pid=$(cat "$PIDFILE")
  say "dockerd (pid $pid) is running but not answering yet; waiting for it"
else
  rm -f "$PIDFILE" "${SOCKET_DIR}/docker.sock"
  mkdir -p "$SOCKET_DIR" "$DATA_ROOT" "$(dirname "$LOG")"
  # overlay2 works here (cgroup v1); fall back to vfs only if the kernel lacks overlayfs.
  driver=overlay2
  if ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; then
    driver=vfs
  fi
  # The log is appended to while the engine runs; keep one previous generation past 10 MB.
  if [ -f "$LOG" ] && [ "$(stat -c %s "$LOG")" -gt 10485760 ]; then mv -f "$LOG" "$LOG.1"; fi
  say "starting dockerd (storage driver $driver, log $LOG)"
  # setsid + nohup: the engine outlives this script and its terminal. No bridge and no iptables:
  # sandboxes run with --network none, and images are imported from a rootfs, so the engine needs no network.
  setsid nohup dockerd \
    --host "$SOCKET" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" \
    --storage-driver "$driver" \
    --log-level warn \
    --bridge none --iptables=false --ip6tables=false --ip-masq=false \
    >>"$LOG" 2>&1 </dev/null &
  pid=$!
fi

# Alive: the process we started, or (had setsid forked) the one named in the pid file.
alive() { kill -0 "$pid" 2>/dev/null || { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }; }

deadline=$((SECONDS + WAIT_S))
until answers; do
  if ! alive; then
    say "dockerd exited; the end of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "dockerd did not answer on $SOCKET within ${WAIT_S}s; the end of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.2
done

info=$(docker -H "$SOCKET" info --format '{{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null || true)
say "the engine answers on $SOCKET ($info)"
echo "export DOCKER_HOST=$SOCKET"
