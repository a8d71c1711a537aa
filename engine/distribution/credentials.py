"""Registry credentials, and Docker's ``config.json`` where they are kept.

The file is ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, shaped
``{"auths": {"<host>": {"auth": base64("user:pass")}}}``; Podman's ``auth.json``
is the same. Docker Hub is stored under ``https://index.docker.io/v1/``, and
keys may carry a scheme or a path, so lookups normalise them. Credential helpers
(``credHelpers``/``credsStore``) are read through ``docker-credential-<name> get``;
``store`` always writes the file itself. The console keeps
its own credentials and passes them explicitly; this file is for the CLI.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from engine.base.files import write_json_atomic
from engine.distribution.registry import DOCKER_HUB_HOSTS, RegistryClient
from engine.errors import InvalidArgument

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # an OAuth2 refresh token ("identitytoken")

    def __bool__(self) -> bool:
        return bool(self.username or self.identity_token)


def config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def normalize_host(host: str) -> str:
    """``https://index.docker.io/v1/``, ``docker.io``... -> ``docker.io``; ``http://h:5000/v2/`` -> ``h:5000``."""
    text = host.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0]
    return "docker.io" if text.lower() in DOCKER_HUB_HOSTS else text


def _store_key(host: str) -> str:
    host = normalize_host(host)
    return DOCKER_HUB_KEY if host == "docker.io" else host


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path} is not a JSON object")
    return data


def lookup(host: str, path: Path | None = None) -> Credentials | None:
    """The credentials stored for ``host``, or None: a credential helper if one is configured, else ``auths``."""
    wanted = normalize_host(host)
    data = _read(path or config_path())
    helper = (data.get("credHelpers") or {}).get(wanted) or data.get("credsStore")
    if helper:
        found = _from_helper(helper, _store_key(wanted))
        if found:
            return found
    auths = data.get("auths") or {}
    for key, entry in auths.items():
        if normalize_host(key) != wanted or not isinstance(entry, dict):
            continue
        token = entry.get("identitytoken") or ""
        username, password = entry.get("username") or "", entry.get("password") or ""
        if entry.get("auth"):
            try:
                username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument(f"the stored credentials for {wanted} are malformed") from None
        creds = Credentials(username, password, token)
        if creds:
            return creds
    return None


def _from_helper(helper: str, server: str) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` (the docker credential helper protocol)."""
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        return None
    try:
        out = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=30)
        if out.returncode != 0:
            return None  # "credentials not found in native keychain" and the like
        reply = json.loads(out.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    username, secret = reply.get("Username") or "", reply.get("Secret") or ""
    if username == "<token>":  # how helpers hand back an identity token
        return Credentials(identity_token=secret)
    return Credentials(username, secret) if username else None


def store(host: str, credentials: Credentials, path: Path | None = None) -> Path:
    """Save credentials for ``host`` (mode 0600, atomic), keeping the rest of the file."""
    path = path or config_path()
    data = _read(path)
    auths = data.setdefault("auths", {})
    wanted = normalize_host(host)
    for key in [k for k in auths if normalize_host(k) == wanted]:
        del auths[key]
    entry = {"auth": base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()}
    if credentials.identity_token:
        entry = {"identitytoken": credentials.identity_token}
    auths[_store_key(host)] = entry
    _write(path, data)
    return path


def remove(host: str, path: Path | None = None) -> bool:
    """Forget the credentials for ``host``; True if there were some."""
    path = path or config_path()
    data = _read(path)
    auths = data.get("auths") or {}
    wanted = normalize_host(host)
    keys = [k for k in auths if normalize_host(k) == wanted]
    for key in keys:
        del auths[key]
    if keys:
        _write(path, data)
    return bool(keys)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_json_atomic(path, data, fsync=True, mode=0o600, indent="\t")


def login(host: str, credentials: Credentials, save: bool = True, insecure: bool | None = None,
          path: Path | None = None) -> Path | None:
    """Verify credentials against the registry (raises RegistryError if refused); save them if asked."""
    if not credentials.username and not credentials.identity_token:
        raise InvalidArgument("a username is required to log in")
    RegistryClient(normalize_host(host), credentials, insecure=insecure).login()
    return store(host, credentials, path) if save else None


def resolve(host: str, credentials: Credentials | None = None, path: Path | None = None) -> Credentials | None:
    """Explicit credentials win; otherwise those stored in config.json, if any."""
    if credentials is not None:
        return credentials
    return lookup(host, path)
