#!/usr/bin/env bash
# Run the README's install-and-run command, exactly as written, in a fresh Debian 12 container that has only
# Debian's python3 (as a stock machine does), on a clean clone of this repository's last commit. Needs root.
#
#   bash scripts/try_fresh_debian.sh
#
# The project's engine has no network (--bridge none), so this starts a throwaway dockerd of its own with
# Docker's default bridge (the container reaches Debian's and PyPI's registries through it) on its own socket
# and data root, and removes all of it afterwards. It never touches the project's engine. No nested Docker or
# bubblewrap in the container, so the test command cannot be tried there.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=try-fresh-debian:bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
SUBNET=172.31.254.0/24
# dockerd runs with --iptables=false (so it leaves no chains behind); this one rule, removed at the end, lets the
# container out.
NAT_RULE=(-s "$SUBNET" ! -o docker0 -j MASQUERADE)
NAT_RULE_ADDED=""

say() { echo "try_fresh_debian.sh: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "must run as root (dockerd and debootstrap need it)"; exit 1; }
# Docker's default bridge (docker0) is one per machine: one run at a time.
exec 9>/tmp/try-fresh-debian.lock
flock -n 9 || { say "another run holds /tmp/try-fresh-debian.lock"; exit 1; }
WORK=$(mktemp -d /tmp/try-fresh-debian.XXXXXX)
SOCKET="unix://$WORK/docker.sock"
PIDFILE="$WORK/dockerd.pid"

cleanup() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  ip link delete docker0 2>/dev/null || true
  if [ -n "$NAT_RULE_ADDED" ]; then iptables -t nat -D POSTROUTING "${NAT_RULE[@]}" 2>/dev/null || true; fi
  # dockerd can leave overlay mounts behind under its data root; they must go before the files can.
  grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The README's first code block is the install-and-run command.
command=$(awk '/^```bash$/ {inside = 1; next} inside && /^```$/ {exit} inside {print}' "$REPO/README.md")
[ -n "$command" ] || { say "no bash code block in README.md"; exit 1; }
say "README command: $command"

say "starting a throwaway dockerd with the default bridge (log $WORK/dockerd.log)"
setsid dockerd --host "$SOCKET" --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$PIDFILE" \
  --bip "${SUBNET%.0/24}.1/24" --iptables=false --ip6tables=false --log-level warn \
  >"$WORK/dockerd.log" 2>&1 </dev/null &
iptables -t nat -A POSTROUTING "${NAT_RULE[@]}" && NAT_RULE_ADDED=1
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || { say "IP forwarding is off (net.ipv4.ip_forward)"; exit 1; }
for _ in $(seq 300); do docker -H "$SOCKET" info >/dev/null 2>&1 && break; sleep 0.2; done
docker -H "$SOCKET" info >/dev/null 2>&1 || { say "dockerd did not start:"; tail -n 20 "$WORK/dockerd.log" >&2; exit 1; }

mirror=$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
say "debootstrap bookworm (minbase + python3) from $mirror"
debootstrap --variant=minbase --include=python3 bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
  || { say "debootstrap failed:"; tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
# This machine's TLS goes through its own CA; keep it if apt's ca-certificates later rebuilds the bundle.
mkdir -p "$WORK/rootfs/etc/ssl/certs" "$WORK/rootfs/usr/local/share/ca-certificates"
cp "$CA_BUNDLE" "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
cp "$CA_BUNDLE" "$WORK/rootfs/usr/local/share/ca-certificates/host-bundle.crt"
git clone --quiet "$REPO" "$WORK/rootfs/root/safety-sandbox"
tar -C "$WORK/rootfs" --numeric-owner -c . | docker -H "$SOCKET" import - "$IMAGE" >/dev/null

say "running it in the container (as root, in /root/safety-sandbox)"
docker -H "$SOCKET" run --rm -w /root/safety-sandbox "$IMAGE" bash -c "$command"
say "passed"
