"""The OCI runtime: a thin wrapper around ``runc`` (or ``crun`` where it works) and the
bundle ``config.json`` built from an image config plus the user's options.

The runtime's state lives under ``run_root/runc`` so it disappears on reboot, like
the containers' processes. Which runtime to use is probed once (``engine.system.host``) and
cached in ``run_root`` so that every CLI call does not start a probe container.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from engine.base.files import write_json_atomic
from engine.config import EngineConfig
from engine.errors import InvalidArgument, NotFound, RuntimeFailure

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby oci/caps/defaults.go
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
# moby oci/defaults.go
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# The system calls Docker's default seccomp profile refuses to a container without extra
# capabilities (docs.docker.com, "Seccomp security profiles for Docker"): kernel modules,
# clocks, keyrings, mounts, namespaces, swap, reboot, other processes' memory, io_uring...
# Ours allows everything else rather than listing what is allowed, which keeps it short
# and right on every architecture; names a kernel does not have are ignored by runc.
SECCOMP_REFUSED = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "get_mempolicy",
    "init_module", "io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "mount_setattr",
    "move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
    "perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "query_module",
    "quotactl", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapoff",
    "swapon", "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
    "vm86", "vm86old",
]
# clone() flags that make new namespaces (a user namespace needs no capability at all).
CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                         0x40000000]  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
SECCOMP_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}
EPERM, ENOSYS = 1, 38


def default_seccomp() -> dict:
    """The seccomp filter of every container not started ``seccomp=unconfined``."""
    rules: list[dict] = [{"names": SECCOMP_REFUSED, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}]
    # clone's flags are its first argument on these architectures; one rule per flag
    # (a rule's conditions are all required, the rules are alternatives).
    rules += [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
               "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]}
              for flag in CLONE_NAMESPACE_FLAGS]
    # clone3 passes its flags in memory, out of a filter's sight: "not implemented" makes
    # the C library fall back to clone, as under Docker.
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    architectures = SECCOMP_ARCHITECTURES.get(os.uname().machine)
    if architectures:
        profile["architectures"] = architectures
    return profile


def parse_security_opts(options: list[str] | None) -> list[str]:
    """Docker's ``--security-opt``, of which Berth knows ``seccomp=unconfined`` (no filter)."""
    kept = []
    for option in options or []:
        key, _, value = option.partition("=")
        if key == "seccomp" and value == "unconfined":
            kept.append("seccomp=unconfined")
        elif key == "seccomp":
            raise InvalidArgument(f"--security-opt {option}: only seccomp=unconfined is supported "
                                  "(the default profile applies otherwise)")
        else:
            raise InvalidArgument(f"--security-opt {option}: unknown option (Berth knows seccomp=unconfined)")
    return kept


def default_mounts() -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def cgroups_path(container_id: str) -> str:
    """runc's cgroupfs path for a container: ``/berth/<id>`` in every v1 controller."""
    return f"/berth/{container_id}"


def cgroup_dir(controller: str, container_id: str) -> Path:
    return Path("/sys/fs/cgroup") / controller / "berth" / container_id


def build_process(*, args: list[str], env: list[str], cwd: str, uid: int, gid: int,
                  additional_gids: list[int], terminal: bool,
                  capabilities: list[str] | None = None) -> dict:
    caps = list(DEFAULT_CAPABILITIES if capabilities is None else capabilities)
    user: dict = {"uid": uid, "gid": gid}
    if additional_gids:
        user["additionalGids"] = additional_gids
    process = {
        "terminal": terminal,
        "user": user,
        "args": args,
        "env": env,
        "cwd": cwd or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": False,
    }
    if terminal:
        process["consoleSize"] = {"height": 24, "width": 80}
    return process


def build_spec(*, container_id: str, process: dict, rootfs: Path, hostname: str,
               readonly: bool, network: str, memory: int, nano_cpus: int, pids_limit: int,
               annotations: dict[str, str], extra_mounts: list[dict], seccomp: bool = True) -> dict:
    """The bundle's config.json, with Docker's defaults for a non-privileged container."""
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if network != "host":
        # A private network namespace: runc brings up only ``lo`` in it.
        # Networks (bridge and published ports) hook in here by passing a netns path.
        namespaces.append({"type": "network"})
    resources: dict = {"devices": [{"allow": False, "access": "rwm"}]}
    if memory:
        resources["memory"] = {"limit": memory}
        # memory+swap equal to memory: no swap, as Docker does with --memory alone,
        # only where swap accounting exists.
        if Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists():
            resources["memory"]["swap"] = memory
    if nano_cpus:
        period = 100000
        resources["cpu"] = {"period": period, "quota": nano_cpus * period // 1_000_000_000}
    if pids_limit:
        resources["pids"] = {"limit": pids_limit}
    linux = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path(container_id),
        "resources": resources,
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    }
    if seccomp:
        linux["seccomp"] = default_seccomp()
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": readonly},
        "hostname": hostname,
        "mounts": default_mounts() + extra_mounts,
        "annotations": annotations,
        "linux": linux,
    }


class Runtime:
    """Commands of the OCI runtime, with our own state root."""

    def __init__(self, config: EngineConfig):
        self.config = config
        self.path = runtime_path(config)
        self.root = config.run_subdir("runc")

    def base(self) -> list[str]:
        return [self.path, "--root", str(self.root)]

    def _run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        out = subprocess.run(self.base() + list(args), capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        if check and out.returncode != 0:
            message = (out.stderr or out.stdout).strip()
            if "does not exist" in message or "not exist" in message:
                raise NotFound(f"runtime: {message}")
            raise RuntimeFailure(f"{Path(self.path).name} {args[0]}: {message}")
        return out

    def state(self, container_id: str) -> dict | None:
        out = self._run("state", container_id, check=False)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill"] + (["--all"] if all_processes else []) + [container_id, str(signal)]
        self._run(*args)

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def delete(self, container_id: str, force: bool = True) -> None:
        self._run("delete", *(["--force"] if force else []), container_id, check=False)

    def ps(self, container_id: str) -> list[int]:
        out = self._run("ps", "--format", "json", container_id)
        return json.loads(out.stdout or "[]") or []

    def list_ids(self) -> list[str]:
        out = self._run("list", "--format", "json", check=False)
        if out.returncode != 0 or not out.stdout.strip():
            return []
        return [c["id"] for c in json.loads(out.stdout) or []]


def runtime_path(config: EngineConfig) -> str:
    """The binary of the runtime that works here, probed once per boot and cached."""
    cache = config.run_root / "runtime.json"
    try:
        cached = json.loads(cache.read_text())
        if os.access(cached["path"], os.X_OK):
            return cached["path"]
    except (OSError, ValueError, KeyError):
        pass
    from engine.system.host import preferred_runtime

    facts = preferred_runtime()
    if facts is None or facts.path is None:
        raise RuntimeFailure("no working OCI runtime (runc or crun) on this host")
    config.run_root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, {"name": facts.name, "path": facts.path}, fsync=False)
    return facts.path
