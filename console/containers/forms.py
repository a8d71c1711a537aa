"""The create (and duplicate / edit and recreate) form, checked the way the engine will."""

from __future__ import annotations

import re
import shlex

from django import forms
from django.core.exceptions import ValidationError

from console.core.forms_util import parse_key_values
from engine.containers.inputs import parse_bytes, parse_cpus, parse_restart
from engine.errors import InvalidArgument
from engine.net.ports import parse_publish
from engine.volumes import parse_mount

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # Docker's container name rule
ENV_NAME = re.compile(r"^[^=\s]+$")

RESTART_CHOICES = [("no", "Never"), ("on-failure", "On failure"), ("always", "Always"),
                   ("unless-stopped", "Unless stopped")]
NETWORK_CHOICES = [("bridge", "Default bridge"), ("private", "Private (loopback only)"), ("none", "None"),
                   ("host", "Host (administrators)")]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _engine_check(parse, value):
    try:
        return parse(value)
    except InvalidArgument as exc:
        raise forms.ValidationError(str(exc)) from None


class ContainerForm(forms.Form):
    image = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"list": "local-images",
                                                                          "placeholder": "busybox:latest"}))
    name = forms.CharField(max_length=128, required=False, help_text="Leave empty for a generated name.")
    command = forms.CharField(max_length=2000, required=False,
                              help_text="Replaces the image's command, e.g. sh -c 'echo hi; sleep 3600'.")
    entrypoint = forms.CharField(max_length=2000, required=False)
    env = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "placeholder": "KEY=value, one per line"}),
                          required=False, label="Environment")
    labels = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "placeholder": "key=value, one per line"}),
                             required=False)
    workdir = forms.CharField(max_length=500, required=False, label="Working directory")
    user = forms.CharField(max_length=100, required=False, help_text="name, uid or uid:gid")
    hostname = forms.CharField(max_length=63, required=False)
    network = forms.ChoiceField(choices=NETWORK_CHOICES, initial="bridge")
    ports = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "placeholder": "8080:80, 127.0.0.1:5353:53/udp, or 80"}),
                            required=False, label="Published ports", help_text="One per line, as docker run -p.")
    volumes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "placeholder": "data:/var/lib/app, /srv/conf:/etc/app:ro"}),
                              required=False, help_text="One per line, as docker run -v. Host paths: administrators only.")
    restart = forms.ChoiceField(choices=RESTART_CHOICES, initial="no", label="Restart policy")
    max_retries = forms.IntegerField(min_value=0, max_value=1000, required=False,
                                     label="Max retries (on failure)")
    memory = forms.CharField(max_length=20, required=False, help_text="e.g. 256m, 1g")
    cpus = forms.CharField(max_length=10, required=False, label="CPUs", help_text="e.g. 0.5")
    pids_limit = forms.IntegerField(min_value=1, max_value=4_194_304, required=False, label="Process limit")
    read_only = forms.BooleanField(required=False, label="Read-only root filesystem")
    seccomp_unconfined = forms.BooleanField(
        required=False, label="No seccomp filter (administrators)",
        help_text="Lifts Docker's system call refusals (mounts, namespaces, keyrings...), as "
                  "--security-opt seccomp=unconfined.")
    tty = forms.BooleanField(required=False, label="Allocate a TTY")
    interactive = forms.BooleanField(required=False, label="Keep stdin open")
    start = forms.BooleanField(required=False, initial=True, label="Start it once created")

    def __init__(self, *args, allow_host_network: bool = False, networks=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Host network and host paths are dangerous options: administrators only.
        self.allow_host_network = allow_host_network
        choices = [c for c in NETWORK_CHOICES if allow_host_network or c[0] != "host"]
        self.fields["network"].choices = choices + [(name, name) for name in networks if name != "bridge"]
        if not allow_host_network:
            del self.fields["seccomp_unconfined"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if name and not NAME.match(name):
            raise forms.ValidationError("Use letters, digits, '_', '.' and '-', starting with a letter or digit.")
        return name

    def _split(self, field):
        text = self.cleaned_data[field].strip()
        if not text:
            return None
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Cannot split this into words: {exc}.") from None

    def clean_command(self):
        return self._split("command")

    def clean_entrypoint(self):
        return self._split("entrypoint")

    def clean_env(self):
        env = _lines(self.cleaned_data["env"])
        for item in env:
            key, eq, _ = item.partition("=")
            # KEY alone would copy the worker's own environment into the container: never.
            if not eq or not ENV_NAME.match(key):
                raise forms.ValidationError(f"{item!r}: write each variable as KEY=value.")
        return env

    def clean_labels(self):
        return parse_key_values(self.cleaned_data["labels"])

    def clean_ports(self):
        ports = _lines(self.cleaned_data["ports"])
        for item in ports:
            _engine_check(parse_publish, item)
        return ports

    def clean_volumes(self):
        from console.access.objects import is_host_path

        volumes = _lines(self.cleaned_data["volumes"])
        for item in volumes:
            # Refused before the engine's parser looks at the path: whether it exists is not told.
            if is_host_path(item) and not self.allow_host_network:
                raise forms.ValidationError(f"{item!r}: only administrators may mount host paths.")
            _engine_check(parse_mount, item)
        return volumes

    def clean_hostname(self):
        from console.containers.services import check_hostname

        hostname = self.cleaned_data["hostname"].strip()
        try:
            check_hostname(hostname)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["hostname"]) from None
        return hostname

    def clean_memory(self):
        value = self.cleaned_data["memory"].strip()
        if value:
            _engine_check(parse_bytes, value)
        return value or None

    def clean_cpus(self):
        value = self.cleaned_data["cpus"].strip()
        if value:
            _engine_check(parse_cpus, value)
        return value or None

    def clean_network(self):
        network = self.cleaned_data["network"]
        if network == "host" and not self.allow_host_network:
            raise forms.ValidationError("Only administrators may use the host network.")
        return network

    def clean(self):
        data = super().clean()
        restart = data.get("restart", "no")
        if data.get("max_retries") and restart != "on-failure":
            self.add_error("max_retries", "Only the on-failure policy takes a retry count.")
        elif restart == "on-failure" and data.get("max_retries"):
            restart = f"on-failure:{data['max_retries']}"
        try:
            parse_restart(restart)
        except InvalidArgument as exc:
            self.add_error("restart", str(exc))
        data["restart_policy"] = restart
        return data

    def spec(self) -> dict:
        """What the engine's create takes."""
        d = self.cleaned_data
        return {
            "image": d["image"].strip(), "command": d["command"], "name": d["name"] or None,
            "entrypoint": d["entrypoint"], "env": d["env"], "labels": d["labels"],
            "workdir": d["workdir"] or None, "user": d["user"] or None, "hostname": d["hostname"] or None,
            "network": d["network"], "publish": d["ports"], "volumes": d["volumes"],
            "restart": d["restart_policy"], "memory": d["memory"],
            "cpus": d["cpus"], "pids_limit": d["pids_limit"], "read_only": d["read_only"],
            "tty": d["tty"], "open_stdin": d["interactive"],
            "security_opt": ["seccomp=unconfined"] if d.get("seccomp_unconfined") else None,
        }


def initial_from_inspect(data: dict) -> dict:
    """Form values that recreate a container as ``inspect`` describes it."""
    config, host = data.get("Config") or {}, data.get("HostConfig") or {}
    policy = host.get("RestartPolicy") or {}
    memory = host.get("Memory") or 0
    nano = host.get("NanoCpus") or 0
    return {
        "image": config.get("Image", ""),
        "name": (data.get("Name") or "").lstrip("/"),
        "command": shlex.join(config.get("Cmd") or []),
        "entrypoint": shlex.join(config.get("Entrypoint") or []),
        "env": "\n".join(config.get("Env") or []),
        "labels": "\n".join(f"{k}={v}" for k, v in (config.get("Labels") or {}).items()),
        "workdir": config.get("WorkingDir", ""),
        "user": config.get("User", ""),
        "hostname": config.get("Hostname", ""),
        "network": host.get("NetworkMode") or "private",
        "ports": "\n".join(_publish_specs(host.get("PortBindings") or {})),
        "volumes": "\n".join(_volume_specs(data.get("Mounts") or [])),
        "restart": policy.get("Name") or "no",
        "max_retries": policy.get("MaximumRetryCount") or None,
        "memory": f"{memory // (1024 * 1024)}m" if memory else "",
        "cpus": f"{nano / 1e9:g}" if nano else "",
        "pids_limit": host.get("PidsLimit") or None,
        "read_only": bool(host.get("ReadonlyRootfs")),
        "seccomp_unconfined": "seccomp=unconfined" in (host.get("SecurityOpt") or []),
        "tty": bool(config.get("Tty")),
        "interactive": bool(config.get("OpenStdin")),
        "start": True,
    }


def _publish_specs(bindings: dict) -> list[str]:
    """Docker's HostConfig.PortBindings back into ``-p`` specs."""
    specs = []
    for port, hosts in bindings.items():
        for host in hosts or [{}]:
            ip, host_port = host.get("HostIp", ""), host.get("HostPort", "")
            prefix = f"{ip}:" if ip and ip not in ("0.0.0.0", "") else ""
            specs.append(f"{prefix}{host_port}:{port}" if host_port else port)
    return [s.removesuffix("/tcp") for s in specs]


def _volume_specs(mounts: list[dict]) -> list[str]:
    """Docker's Mounts back into ``-v`` specs; anonymous volumes come from the image again."""
    specs = []
    for mount in mounts:
        suffix = "" if mount.get("RW", True) else ":ro"
        if mount.get("Type") == "bind":
            specs.append(f"{mount['Source']}:{mount['Destination']}{suffix}")
        elif mount.get("Type") == "volume" and not mount.get("Anonymous"):
            specs.append(f"{mount['Name']}:{mount['Destination']}{suffix}")
    return specs
