"""Registry actions: the only way views (and later the API) change registries.

Adding, editing and deleting a registry are quick database changes: they check
``registries.manage``, validate, save and audit here. Testing the credentials and
browsing a registry talk to the network, so they are Operations (``registries.use``)
run by the worker (see ``console/registries/operations.py``).

The secret (password or token) is only ever written encrypted (``Registry.set_secret``),
and never put in an audit record, an Operation or a message.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from console import audit
from console.access.permissions import require
from console.operations import services as operations
from console.registries import access, reach
from console.registries.models import Registry
from engine.errors import InvalidArgument
from engine.images.reference import parse

DOCKER_HUB_HOST = "docker.io"
ACR_SUFFIX = ".aliyuncs.com"
# Alibaba Cloud Container Registry regions (public endpoints are registry.<region>.aliyuncs.com).
ACR_REGIONS = (
    ("cn-hangzhou", "China (Hangzhou)"), ("cn-shanghai", "China (Shanghai)"),
    ("cn-qingdao", "China (Qingdao)"), ("cn-beijing", "China (Beijing)"),
    ("cn-zhangjiakou", "China (Zhangjiakou)"), ("cn-huhehaote", "China (Hohhot)"),
    ("cn-wulanchabu", "China (Ulanqab)"), ("cn-shenzhen", "China (Shenzhen)"),
    ("cn-heyuan", "China (Heyuan)"), ("cn-guangzhou", "China (Guangzhou)"),
    ("cn-chengdu", "China (Chengdu)"), ("cn-hongkong", "China (Hong Kong)"),
    ("ap-northeast-1", "Japan (Tokyo)"), ("ap-southeast-1", "Singapore"),
    ("ap-southeast-3", "Malaysia (Kuala Lumpur)"), ("ap-southeast-5", "Indonesia (Jakarta)"),
    ("ap-southeast-6", "Philippines (Manila)"), ("ap-southeast-7", "Thailand (Bangkok)"),
    ("us-east-1", "US (Virginia)"), ("us-west-1", "US (Silicon Valley)"),
    ("eu-central-1", "Germany (Frankfurt)"), ("eu-west-1", "UK (London)"),
    ("me-east-1", "UAE (Dubai)"),
)
ACR_REGION_CODES = {code for code, _ in ACR_REGIONS}
_ACR_PUBLIC = re.compile(r"^registry(?:-vpc)?\.([a-z0-9-]+)\.aliyuncs\.com$")
_LABEL = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")
_REPOSITORY_MAX = 255


def acr_host(region: str) -> str:
    return f"registry.{region}.aliyuncs.com"


def acr_region(host: str) -> str:
    """The region of an ACR public endpoint host, or "" (a personal or enterprise instance host)."""
    match = _ACR_PUBLIC.match(host or "")
    return match.group(1) if match and match.group(1) in ACR_REGION_CODES else ""


def normalize_host(kind: str, host: str) -> tuple[str, bool]:
    """The registry host as the engine wants it (``name[:port]``, lower case), and whether it was
    written as a plain ``http://`` URL. Raises ValidationError with a message for the host field."""
    if kind == Registry.Kind.DOCKER_HUB:
        return DOCKER_HUB_HOST, False
    text = (host or "").strip()
    if not text:
        raise ValidationError("Give the registry's host, e.g. registry.example.com or 10.0.0.5:5000.")
    if re.search(r"\s", text):
        raise ValidationError("A host cannot contain spaces.")
    plain_http = False
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() not in ("http", "https"):
            raise ValidationError(f"{scheme}:// is not a registry address; give the host, e.g. registry.example.com.")
        plain_http = scheme.lower() == "http"
        text = rest
    text = text.rstrip("/")
    if text.lower().endswith("/v2"):
        text = text[:-3]
    if "/" in text:
        raise ValidationError("Give only the host and port, without a path "
                              "(a repository is chosen when you browse or pull).")
    if "@" in text:
        raise ValidationError("Put the username and password in their own fields, not in the host.")
    text = text.lower()
    name, port = text, ""
    if text.startswith("["):
        end = text.find("]")
        name, port = text[:end + 1], text[end + 1:].removeprefix(":")
        if end < 0 or not _IPV6.match(name):
            raise ValidationError(f"{text} is not a valid IPv6 address in brackets.")
    elif ":" in text:
        name, _, port = text.rpartition(":")
    if port or text.endswith(":"):
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValidationError(f"The port must be a number from 1 to 65535, not {port or 'empty'}.")
    if not name.startswith("[") and not _HOSTNAME.match(name):
        raise ValidationError(f"{name} is not a valid host name (letters, digits, dots and dashes).")
    if "." not in name and not port and name != "localhost" and not name.startswith("["):
        raise ValidationError(f"Add a domain or a port (e.g. {name}.local or {name}:5000): "
                              f"a bare {name}/app would mean Docker Hub's {name} namespace.")
    if len(text) > 255:
        raise ValidationError("The host is longer than 255 characters.")
    if kind == Registry.Kind.ACR and not name.endswith(ACR_SUFFIX):
        raise ValidationError(f"An Alibaba Cloud ACR host ends in {ACR_SUFFIX}: pick a region, or give "
                              "your instance's host, e.g. crpi-xxxx.cn-hangzhou.personal.cr.aliyuncs.com.")
    try:
        parse(f"{text}/x")
    except InvalidArgument as exc:
        raise ValidationError(str(exc)) from None
    return text, plain_http


def authorize(user, permission: str, action: str, environment, registry: Registry | None = None,
              target_name: str = "") -> None:
    """Check the permission; a refusal is audited too (views call it before showing a form)."""
    try:
        require(user, permission, environment)
    except PermissionDenied:
        audit.record(user=user, action=action, environment=environment, target_type="registry",
                     target_id=str(registry.pk) if registry else "",
                     target_name=registry.name if registry else target_name, outcome="denied")
        raise


def _validate(registry: Registry, *, name: str, kind: str, host: str, username: str, secret: str,
              clear_secret: bool, insecure: bool, use: str, teams) -> dict:
    """Apply validated fields to ``registry`` (not saved); raise ValidationError keyed by field."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors.setdefault("name", []).append("Give the registry a name.")
    elif len(name) > 100:
        errors.setdefault("name", []).append("A name has at most 100 characters.")
    elif Registry.objects.filter(name__iexact=name).exclude(pk=registry.pk).exists():
        errors.setdefault("name", []).append(f"A registry called {name} already exists.")
    if kind not in Registry.Kind.values:
        errors.setdefault("kind", []).append("Pick Docker Hub, Alibaba Cloud ACR or a v2 registry.")
    plain_http = False
    try:
        host, plain_http = normalize_host(kind, host)
    except ValidationError as exc:
        errors.setdefault("host", []).extend(exc.messages)
    username = (username or "").strip()
    if re.search(r"\s|:", username):
        errors.setdefault("username", []).append("A username cannot contain spaces or a colon.")
    if len(username) > 255:
        errors.setdefault("username", []).append("A username has at most 255 characters.")
    if secret and clear_secret:
        errors.setdefault("clear_secret", []).append("Either give a new secret or clear it, not both.")
    keeps_secret = registry.has_secret and not clear_secret
    if (secret or keeps_secret) and not username:
        errors.setdefault("username", []).append("A password or token needs a username.")
    use = use or Registry.Use.OWNER
    teams = list(teams or [])
    if use not in Registry.Use.values:
        errors.setdefault("use", []).append("Pick who may use its credentials.")
    elif use == Registry.Use.TEAMS and not teams:
        errors.setdefault("teams", []).append("Pick at least one team (or another choice above).")
    if errors:
        raise ValidationError(errors)
    before = {f: getattr(registry, f) for f in ("name", "kind", "host", "username", "insecure", "use")}
    registry.name, registry.kind, registry.host, registry.username = name, kind, host, username
    registry.use = use
    registry.insecure = bool(insecure or plain_http) and kind != Registry.Kind.DOCKER_HUB
    changed = [f for f, value in before.items() if getattr(registry, f) != value]
    if secret:
        registry.set_secret(secret)
        changed.append("secret")
    elif clear_secret and registry.has_secret:
        registry.secret_encrypted = ""
        changed.append("secret")
    team_ids = sorted(t.pk for t in teams) if use == Registry.Use.TEAMS else []
    if registry.pk is None or team_ids != sorted(registry.teams.values_list("pk", flat=True)):
        changed.append("teams")
    return {"changed": changed, "secret_changed": "secret" in changed, "team_ids": team_ids}


def _save(registry: Registry, team_ids: list[int]) -> None:
    try:
        with transaction.atomic():
            registry.save()
            registry.teams.set(team_ids)
    except IntegrityError:
        raise ValidationError({"name": [f"A registry called {registry.name} already exists."]}) from None


def _scope_details(registry: Registry) -> dict:
    return {"use": registry.use, "teams": sorted(registry.teams.values_list("name", flat=True))}


def create(user, environment, *, name: str, kind: str, host: str, username: str = "", secret: str = "",
           insecure: bool = False, use: str = Registry.Use.OWNER, teams=()) -> Registry:
    """Add a registry. ``use``/``teams``: who may use its credentials (``Registry.Use``)."""
    authorize(user, "registries.manage", "registry.create", environment, target_name=name)
    registry = Registry(created_by=user if user.is_authenticated else None)
    change = _validate(registry, name=name, kind=kind, host=host, username=username, secret=secret,
                       clear_secret=False, insecure=insecure, use=use, teams=teams)
    _save(registry, change["team_ids"])
    audit.record(user=user, action="registry.create", environment=environment, target_type="registry",
                 target_id=str(registry.pk), target_name=registry.name,
                 details={"kind": registry.kind, "host": registry.host, "username": registry.username,
                          "insecure": registry.insecure, "secret_set": registry.has_secret,
                          **_scope_details(registry)})
    return registry


def update(user, environment, registry: Registry, *, name: str, kind: str, host: str, username: str = "",
           secret: str = "", clear_secret: bool = False, insecure: bool = False,
           use: str = Registry.Use.OWNER, teams=()) -> Registry:
    """Change a registry. An empty ``secret`` keeps the stored one unless ``clear_secret``."""
    authorize(user, "registries.manage", "registry.update", environment, registry)
    old_host = registry.host
    change = _validate(registry, name=name, kind=kind, host=host, username=username, secret=secret,
                       clear_secret=clear_secret, insecure=insecure, use=use, teams=teams)
    if not change["changed"]:
        return registry
    if set(change["changed"]) & {"host", "username", "secret", "insecure", "kind"}:
        # The last test said something about other credentials or another place.
        registry.last_tested_at, registry.last_test_ok, registry.last_test_message = None, None, ""
    with transaction.atomic():
        _save(registry, change.pop("team_ids"))
        if registry.host != old_host:
            registry.repositories.all().delete()  # they were browsed elsewhere
    audit.record(user=user, action="registry.update", environment=environment, target_type="registry",
                 target_id=str(registry.pk), target_name=registry.name,
                 details={"username": registry.username, "host": registry.host, **change,
                          **_scope_details(registry),
                          # "changed"/"cleared" survive audit.redact, which hides secret_* keys' values
                          "cleared": ["secret"] if clear_secret and "secret" in change["changed"] else []})
    return registry


def delete(user, environment, registry: Registry) -> None:
    authorize(user, "registries.manage", "registry.delete", environment, registry)
    pk, name, host = registry.pk, registry.name, registry.host
    registry.delete()
    audit.record(user=user, action="registry.delete", environment=environment, target_type="registry",
                 target_id=str(pk), target_name=name, details={"host": host})


def _start(user, environment, registry: Registry, action: str, target_name: str = "", **parameters):
    def check():  # after the permission: this user may use it, and Berth may reach it
        access.check_use(user, environment, registry)
        reach.check(registry.host)

    return operations.start(
        user=user, environment=environment, action=action,
        target_type="registry", target_id=str(registry.pk), target_name=target_name or registry.name,
        parameters={"registry_id": registry.pk, "host": registry.host, **parameters},
        check=check,
    )


def test(user, environment, registry: Registry):
    """Check the credentials against the registry (as ``docker login`` does, saving nothing)."""
    return _start(user, environment, registry, "registry.test")


def browse(user, environment, registry: Registry):
    """List the registry's repositories (its catalog) and their tags."""
    if not registry.has_catalog:
        raise ValidationError(f"{registry.get_kind_display()} does not list its repositories: "
                              "type a repository name to list its tags.")
    return _start(user, environment, registry, "registry.browse")


def normalize_repository(registry: Registry, name: str) -> str:
    """A repository name in ``registry``, as the registry knows it (Docker Hub's ``busybox`` is
    ``library/busybox``). Raises ValidationError."""
    text = (name or "").strip()
    if not text:
        raise ValidationError("Give a repository name, e.g. team/app.")
    if text.startswith(registry.host + "/"):
        text = text[len(registry.host) + 1:]
    if len(text) > _REPOSITORY_MAX:
        raise ValidationError("A repository name has at most 255 characters.")
    if ":" in text or "@" in text:
        raise ValidationError("Give the repository without a tag or digest: its tags are listed for you.")
    try:
        ref = parse(f"{registry.host}/{text}", default_tag=False)
    except InvalidArgument as exc:
        raise ValidationError(str(exc)) from None
    return ref.repository


def list_tags(user, environment, registry: Registry, repository: str):
    """List one repository's tags (and remember them as a Repository row)."""
    repository = normalize_repository(registry, repository)
    return _start(user, environment, registry, "registry.tags", target_name=f"{registry.name}: {repository}",
                  repository=repository)
