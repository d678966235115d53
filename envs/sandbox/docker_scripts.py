"""The bash scripts a docker sandbox runs inside its container, as the agent: the command wrappers (the shell
server's, and the old path's, one `docker exec` per command), the file tools, and the old path's reset."""

from __future__ import annotations

import shlex

# Where else the agent can write (the rootfs is read-only): emptied on reset like the roots.
SCRATCH_DIRS = ("/tmp", "/dev/shm", "/dev/mqueue")

# The old path (one exec per command): the command runs under coreutils `timeout` (which kills its process
# group); then every uid-1000 process
# left (background jobs, setsid escapes, a fork bomb's children) is killed, as a fresh bwrap run would do.
# The wrapper's own stderr goes to /dev/null so bash's "Killed" job notice stays out of the output. The
# memory and file-size ulimits are the local provider's (a big allocation fails with ENOMEM rather than
# meeting the cgroup's OOM killer); there is no `ulimit -u`: uid 1000 is shared by every container on the
# host, so a per-user process cap would couple them (the container's pids limit applies instead).
# kill(-1) also reports success when the only other processes are root's (signalled in vain), so the loop
# ends when /proc shows no other process of ours; repeating catches children forked during a kill.
KILL_ALL = ('for ((i = 0; i < 200; i++)); do kill -9 -1 2>/dev/null; left=; '
            'for p in /proc/[1-9]*; do [ "${p#/proc/}" != "$$" ] && [ -O "$p" ] && { left=1; break; }; done; '
            '[ -n "$left" ] || break; done')
# The command itself comes first on stdin, `$4` bytes long, then the command's own input: the inner bash reads
# exactly those bytes (`head -c` never reads ahead of them) and evals them, so a command may be far longer
# than the 128 KiB Linux allows one argument, and still runs as `bash -c` would run it ($0 bash, no $1...).
RUN_FROM_STDIN = 'c=$(head -c "$1"); shift; eval "unset c; $c"'
WRAPPER = ('exec 3>&2 2>/dev/null; ulimit -v "$2"; ulimit -f "$3"; '
           f'timeout -s KILL "$1" bash -c {shlex.quote(RUN_FROM_STDIN)} bash "$4" 2>&3 3>&-; '
           f'rc=$?; {KILL_ALL}; exit $rc')
# The same for the shell server, which ends every process of the agent itself (at the timeout, or when the command
# ends): the ulimits, then the command, from a memory file the server makes (@SCRIPT@ becomes its path), sourced
# with no positional parameters as the local provider does, so no process but this bash starts before it. The
# command's processes are the first the kernel's OOM killer picks, never the server.
SERVER_WRAPPER = ('{ echo 1000 > /proc/self/oom_score_adj; ulimit -v "$1"; ulimit -f "$2"; } 2>/dev/null; set --; '
                  '. @SCRIPT@')
# The file tools run as the agent (so its rights apply, never root's) and stay in the roots: every link is
# resolved in the container, what leads out of the roots (`$2`...) is refused, and only a regular file is
# opened (a FIFO or device could block or never end). Nothing of the agent's runs meanwhile (each command ends
# all of them), so what is checked is what is opened. Exit codes: 3 the path cannot be resolved (stderr says
# why), 4 outside the roots, 5 a folder, 6 not a regular file. (`resolve` keeps a name's trailing newlines,
# which $(...) alone would strip.)
INSIDE_ROOTS = """
resolve() {
  local out
  out=$(realpath "$@" 2>&1 && echo /) || { printf '%s\\n' "$out" >&2; exit 3; }
  real=${out%$'\\n/'}
}
inside() {
  local root
  for root in "${@:2}"; do case $1 in "$root" | "${root%/}"/*) return 0 ;; esac; done
  return 1
}
"""
READ_FILE = INSIDE_ROOTS + """
resolve -e -- "$1"
inside "$real" "${@:2}" || exit 4
[ -d "$real" ] && exit 5
[ -f "$real" ] || exit 6
exec cat -- "$real"
"""
# write_file: the folder must exist; a link (even a dangling one) is followed as `cat >` would follow it.
WRITE_FILE = INSIDE_ROOTS + """
folder=${1%/*}
resolve -e -- "${folder:-/}"
real=${real%/}/${1##*/}
if [ -L "$real" ]; then resolve -m -- "$real"; fi
inside "$real" "${@:2}" || exit 4
[ -d "$real" ] && exit 5
[ -e "$real" ] && [ ! -f "$real" ] && exit 6
exec cat > "$real"
"""
# Reset, in one exec as uid 1000 (which owns everything under the roots): end every process, remove the
# System V IPC objects (they outlive processes; /proc/sysvipc lists them under a header line), empty the
# scratch dirs and the roots (making the agent's read-only folders writable first), check all of it is gone
# (else the container is discarded), then unpack the seed files from stdin (`$1` says whether there are any),
# so they belong to the agent with their modes.
HOUSEKEEPING = KILL_ALL + """
shopt -s nullglob dotglob
seed=$1; shift
sysv_left() {
  local f lines
  for f in /proc/sysvipc/msg /proc/sysvipc/sem /proc/sysvipc/shm; do
    mapfile -t lines < "$f" && ((${#lines[@]} > 1)) && return 0
  done
  return 1
}
if sysv_left; then ipcrm --all 2>/dev/null; fi
for d in """ + " ".join(SCRATCH_DIRS) + """ "$@"; do
  entries=("$d"/*)
  if ((${#entries[@]})); then
    chmod -R u+rwX -- "${entries[@]}" 2>/dev/null
    rm -rf -- "${entries[@]}" 2>/dev/null
  fi
done
for d in """ + " ".join(SCRATCH_DIRS) + """ "$@"; do
  entries=("$d"/*)
  if ((${#entries[@]})); then echo "could not empty $d" >&2; exit 1; fi
done
if sysv_left; then echo "could not remove the System V IPC objects" >&2; exit 1; fi
if [ "$seed" = 1 ]; then exec tar -x -p -m -f - -C /; fi
"""
NUL_REJECTED = "the command was not run: it contains a NUL byte, which no shell command can hold\n"
