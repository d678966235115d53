"""The local sandbox's seccomp filter: syscalls an agent's shell never needs, and that widen the kernel surface an
escape would use, fail with EPERM (not a kill, so ordinary tools that probe them keep working). Compiled once to
classic BPF with libseccomp (through pyseccomp) and handed to bubblewrap as `--seccomp FD`."""

from __future__ import annotations

import errno
import functools
import tempfile

from envs.sandbox.base import SandboxUnavailable

DENIED_SYSCALLS = (
    # tracing and other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open",
    # the kernel keyring, eBPF, userfaultfd, io_uring: large attack surfaces no shell tool needs
    "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
    # namespaces and mounts: the sandbox's view must stay the one bubblewrap built
    "unshare", "setns", "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    # the machine itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
    "syslog", "acct", "quotactl", "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "lookup_dcookie", "vhangup",
)
# clone() flags that make new namespaces (clone3 passes its flags in memory a filter cannot read: it answers
# ENOSYS instead, so libc falls back to clone, whose flags the filter sees).
NAMESPACE_CLONE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
INSTALL_HINT = "install libseccomp (Debian: apt-get install libseccomp2) and the pyseccomp package"


@functools.cache
def seccomp_program() -> bytes:
    """The filter as a BPF program for bubblewrap. Raises SandboxUnavailable if libseccomp is missing."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError) as exc:  # pyseccomp loads libseccomp.so when imported
        raise SandboxUnavailable(f"the local sandbox's seccomp filter cannot be built ({exc}): {INSTALL_HINT}") from exc
    denied = seccomp.ERRNO(errno.EPERM)
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            syscall_filter.add_rule(denied, name)
        except OSError:  # a syscall this libseccomp or architecture does not know cannot be called either
            continue
    syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in NAMESPACE_CLONE_FLAGS:
        syscall_filter.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    with tempfile.TemporaryFile() as program:
        syscall_filter.export_bpf(program)
        program.seek(0)
        return program.read()
