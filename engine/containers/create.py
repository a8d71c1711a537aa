"""Creating a container (``docker create``): what the user typed, checked before anything is
touched, merged with the image's config into the container's ``config.json``, its OCI
bundle, rootfs snapshot, volumes and network endpoint; on any failure none of it stays.
``Containers.create`` is the entry point; the name reservation is the store's."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from engine import events
from engine.base.clock import now_rfc3339
from engine.base.files import write_json_atomic
from engine.containers.inputs import (
    check_name,
    check_volume_specs,
    merge_env,
    parse_bytes,
    parse_cpus,
    parse_env,
    parse_restart,
)
from engine.containers.state import ZERO_TIME
from engine.errors import EngineError, InvalidArgument
from engine.runtime import users
from engine.runtime.runc import DEFAULT_PATH, build_process, build_spec, parse_security_opts

if TYPE_CHECKING:
    from engine.containers.manager import Container, Containers


def create_container(containers: Containers, image: str, command: list[str] | None = None, *,
                     name: str | None = None,
                     entrypoint: list[str] | str | None = None, env: list[str] | None = None,
                     workdir: str | None = None, user: str | None = None, tty: bool = False,
                     open_stdin: bool = False, labels: dict[str, str] | None = None,
                     hostname: str | None = None, memory: str | int | None = None,
                     cpus: str | float | None = None, pids_limit: int | None = None,
                     read_only: bool = False, restart: str | None = None, network: str | None = None,
                     publish: list[str] | None = None, volumes: list[str] | None = None,
                     auto_remove: bool = False, security_opt: list[str] | None = None) -> Container:
    """``docker create``. ``network``: none, host, private (the default: a namespace with
    only ``lo``), bridge or a network's name; ``publish``: ``-p`` specs; ``volumes``: ``-v``
    specs (engine.net.networks and engine.volumes do those parts)."""
    # Everything the user typed is checked before anything is touched.
    memory_bytes = parse_bytes(memory)
    nano_cpus = parse_cpus(cpus)
    if pids_limit is not None and int(pids_limit) < 0:
        raise InvalidArgument("--pids-limit must be a positive number")
    policy = parse_restart(restart)
    security = parse_security_opts(security_opt)
    if auto_remove and policy["Name"] != "no":
        raise InvalidArgument("conflicting options: --restart and --rm")
    nets, vols = containers.networks, containers.volumes
    network, ports = nets.check_mode(network, publish)
    check_volume_specs(volumes)
    from engine.volumes import parse_mounts

    mount_specs = parse_mounts(volumes)
    env_list = parse_env(env)
    if name is not None:
        name = check_name(name)
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint] if entrypoint else []

    img = containers.images.get(image)
    image_config = (img.config or {}).get("config") or {}
    container_id = secrets.token_hex(32)
    directory = containers.root / container_id
    # The directory first: a name link whose directory is missing is known to be stale.
    directory.mkdir(mode=0o700)  # its config and log hold the container's environment
    try:
        name = containers._reserve_name(name, container_id)
    except BaseException:
        directory.rmdir()
        raise
    snapshot_made = False
    created_volumes: list[str] = []
    network_hooked = False
    try:
        lowers = containers.layers.ensure(img)
        rootfs = Path(containers.snapshots.prepare(container_id, lowers))
        snapshot_made = True

        path_entry = entrypoint if entrypoint is not None else (image_config.get("Entrypoint") or [])
        cmd = list(command) if command else ([] if entrypoint is not None else
                                             (image_config.get("Cmd") or []))
        args = list(path_entry) + cmd
        if not args:
            raise InvalidArgument("no command specified")
        hostname = hostname or container_id[:12]
        env_all = merge_env(image_config.get("Env") or [], env_list)
        if not any(e.startswith("PATH=") for e in env_all):
            env_all.insert(0, f"PATH={DEFAULT_PATH}")
        env_all = merge_env([f"HOSTNAME={hostname}"] + (["TERM=xterm"] if tty else []), env_all)
        user_spec = user if user is not None else (image_config.get("User") or "")
        resolved = users.resolve(rootfs, user_spec)
        workdir = workdir or image_config.get("WorkingDir") or "/"
        if not workdir.startswith("/"):
            raise InvalidArgument(f"the working directory {workdir!r} is not absolute")
        all_labels = dict(image_config.get("Labels") or {})
        all_labels.update(labels or {})
        stop_signal = image_config.get("StopSignal") or "SIGTERM"

        env_with_home = env_all if any(e.startswith("HOME=") for e in env_all) else \
            env_all + [f"HOME={resolved.home}"]
        process = build_process(args=args, env=env_with_home, cwd=workdir, uid=resolved.uid,
                                gid=resolved.gid, additional_gids=resolved.additional_gids,
                                terminal=tty)
        extra_mounts = etc_mounts(directory, hostname, network)
        oci_mounts, docker_mounts, created_volumes = vols.prepare_mounts(
            mount_specs, image_config.get("Volumes"), rootfs)
        extra_mounts += oci_mounts
        annotations = {f"org.opencontainers.image.label.{k}": str(v) for k, v in all_labels.items()}
        annotations["org.opencontainers.image.stopSignal"] = stop_signal
        if image_config.get("ExposedPorts"):
            annotations["org.opencontainers.image.exposedPorts"] = ",".join(image_config["ExposedPorts"])
        spec = build_spec(container_id=container_id, process=process, rootfs=rootfs,
                          hostname=hostname, readonly=read_only, network=network,
                          memory=memory_bytes, nano_cpus=nano_cpus, pids_limit=int(pids_limit or 0),
                          annotations=annotations, extra_mounts=extra_mounts,
                          seccomp="seccomp=unconfined" not in security)
        # Addresses, hosts and resolv.conf, and the spec pointed at the namespace that
        # Networks.start makes (the hook for bridge networks; builtin modes pass through).
        network_hooked = True
        network_mode = nets.on_create(container_id, name, hostname, network, ports, directory, spec)
        (directory / "bundle").mkdir()
        write_json_atomic(str(directory / "bundle" / "config.json"), spec, fsync=False, mode=0o600)
        created = now_rfc3339()
        config = {
            "Id": container_id,
            "Name": "/" + name,
            "Created": created,
            "Path": args[0],
            "Args": args[1:],
            "Image": img.id,
            "Rootfs": str(rootfs),
            "LogPath": str(directory / "json.log"),
            "Config": {
                "Hostname": hostname, "User": user_spec, "Tty": tty, "OpenStdin": open_stdin,
                "AttachStdin": open_stdin, "Env": env_all, "Cmd": cmd,
                "Entrypoint": list(path_entry) or None, "Image": image, "WorkingDir": workdir,
                "Labels": all_labels, "StopSignal": stop_signal,
                "ExposedPorts": image_config.get("ExposedPorts") or {},
                "Volumes": image_config.get("Volumes") or {},
            },
            "HostConfig": {
                "Memory": memory_bytes, "NanoCpus": nano_cpus, "PidsLimit": int(pids_limit or 0),
                "ReadonlyRootfs": bool(read_only), "RestartPolicy": policy,
                "AutoRemove": bool(auto_remove),
                "SecurityOpt": security,
                "NetworkMode": network_mode,
                "PortBindings": {f"{p.container_port}/{p.proto}": [{"HostIp": p.host_ip,
                                 "HostPort": str(p.host_port or "")}] for p in ports},
            },
            "Mounts": docker_mounts,
        }
        write_json_atomic(str(directory / "config.json"), config, fsync=False, mode=0o600)
        write_json_atomic(str(directory / "state.json"), {
            "Status": "created", "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME,
            "FinishedAt": ZERO_TIME, "OOMKilled": False, "RestartCount": 0, "Paused": False,
        }, fsync=False, mode=0o600)
    except BaseException:
        if network_hooked:
            nets.on_remove(container_id)
        for volume in created_volumes:
            try:
                vols.remove(volume)
            except EngineError:
                pass
        if snapshot_made:
            containers._remove_snapshot(container_id)
        shutil.rmtree(directory, ignore_errors=True)
        containers._release_name(name, container_id)
        raise
    events.emit(containers.config, "container", "create", container_id, {"name": name, "image": image})
    return containers._load(container_id, reconcile=False)

def etc_mounts(directory: Path, hostname: str, network: str) -> list[dict]:
    """/etc/hostname, /etc/hosts (and resolv.conf with the host's network), as Docker does."""
    (directory / "hostname").write_text(hostname + "\n")
    (directory / "hosts").write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"127.0.1.1\t{hostname}\n")
    mounts = []
    files = ["hostname", "hosts"]
    if network == "host" and Path("/etc/resolv.conf").exists():
        shutil.copyfile("/etc/resolv.conf", directory / "resolv.conf")
        files.append("resolv.conf")
    for f in files:
        mounts.append({"destination": f"/etc/{f}", "type": "bind", "source": str(directory / f),
                       "options": ["rbind", "rprivate"]})
    return mounts
