"""What the worker does for each registry operation (see console.operations.runner).

Registries are global; these talk to the registry from the worker, with the
registry's own credentials, decrypted only here and only for the call, once
``access.credentials_for`` has checked again that the user may still use them.
"""

from __future__ import annotations

from django.utils import timezone

from console.operations.runner import handler
from console.registries import access, reach
from console.registries.models import Registry, Repository
from engine.distribution import credentials as engine_credentials
from engine.distribution import transfer as distribution
from engine.distribution.registry import RegistryClient
from engine.errors import EngineError, InvalidArgument, NotFound, RegistryError

# Browsing lists the tags of this many repositories too; the others on demand.
BROWSE_TAGS_LIMIT = 100


def _registry(ctx) -> Registry:
    registry = Registry.objects.filter(pk=ctx.parameters["registry_id"]).first()
    if registry is None:
        raise NotFound("The registry was deleted before the operation ran.")
    reach.check_in_task(registry.host)
    return registry


def _credentials(ctx, registry: Registry):
    try:
        return access.credentials_for(ctx.operation, registry)["credentials"]
    except ValueError as exc:  # the stored secret cannot be decrypted with this console's key
        raise InvalidArgument(f"{exc}; set the secret of {registry.name} again.") from None


def _record_test(registry: Registry, ok: bool, message: str) -> None:
    registry.last_tested_at, registry.last_test_ok, registry.last_test_message = timezone.now(), ok, message
    Registry.objects.filter(pk=registry.pk).update(
        last_tested_at=registry.last_tested_at, last_test_ok=ok, last_test_message=message)


@handler("registry.test")
def test(ctx):
    registry = _registry(ctx)
    try:
        credentials = _credentials(ctx, registry)
        if credentials:
            engine_credentials.login(registry.host, credentials, save=False, insecure=registry.engine_insecure)
            message = f"Signed in to {registry.host} as {registry.username}."
        else:
            # No username: can we use it anonymously, as a pull without credentials would?
            RegistryClient(registry.host, None, insecure=registry.engine_insecure).login()
            message = f"{registry.host} answers and allows anonymous access."
    except EngineError as exc:
        told = reach.plain(exc, registry.host, ctx.operation)  # its user sees what they may know
        _record_test(registry, False, str(told))
        if told is exc:
            raise
        raise told from None
    _record_test(registry, True, message)
    ctx.line(message)
    return {"ok": True, "message": message}


def _tags(registry: Registry, repository: str, credentials) -> list[str]:
    return sorted(distribution.list_tags(f"{registry.host}/{repository}", credentials,
                                         insecure=registry.engine_insecure))


@handler("registry.browse")
def browse(ctx):
    registry = _registry(ctx)
    credentials = _credentials(ctx, registry)
    try:
        with reach.errors_for(ctx.operation, registry.host):
            names = sorted(set(distribution.catalog(registry.host, credentials,
                                                    insecure=registry.engine_insecure)))
    except RegistryError as exc:
        if getattr(exc, "status", None) in (403, 404, 405) or getattr(exc, "code", "") in ("UNSUPPORTED", "DENIED"):
            # Many hosted registries (ACR, Hub, GHCR...) keep their catalog to themselves.
            raise RegistryError(f"{exc}. This registry does not list its repositories to you: "
                                "type a repository name to list its tags.") from None
        raise
    ctx.line(f"{registry.host} lists {len(names)} repositor{'y' if len(names) == 1 else 'ies'}.")
    now = timezone.now()
    listed = set(names)
    stale = [pk for name, pk in Repository.objects.filter(registry=registry).values_list("name", "pk")
             if name not in listed]
    for start in range(0, len(stale), 500):  # small batches: SQLite limits query parameters
        Repository.objects.filter(pk__in=stale[start:start + 500]).delete()
    Repository.objects.bulk_create([Repository(registry=registry, name=name) for name in names],
                                   ignore_conflicts=True, batch_size=500)
    failed = []
    for name in names[:BROWSE_TAGS_LIMIT]:
        try:
            tags = _tags(registry, name, credentials)
        except EngineError as exc:
            failed.append(name)
            ctx.line(f"{name}: {reach.plain(exc, registry.host, ctx.operation)}")
            continue
        Repository.objects.filter(registry=registry, name=name).update(tags=tags, browsed_at=now)
        ctx.line(f"{name}: {len(tags)} tag{'' if len(tags) == 1 else 's'}")
    if len(names) > BROWSE_TAGS_LIMIT:
        ctx.line(f"Tags of the other {len(names) - BROWSE_TAGS_LIMIT} repositories are listed on demand.")
    return {"repositories": len(names), "tags_listed": min(len(names), BROWSE_TAGS_LIMIT) - len(failed),
            "failed": failed}


@handler("registry.tags")
def tags(ctx):
    registry = _registry(ctx)
    repository = ctx.parameters["repository"]
    credentials = _credentials(ctx, registry)
    with reach.errors_for(ctx.operation, registry.host):
        found = _tags(registry, repository, credentials)
    Repository.objects.update_or_create(registry=registry, name=repository,
                                        defaults={"tags": found, "browsed_at": timezone.now()})
    ctx.line(f"{repository}: {len(found)} tag{'' if len(found) == 1 else 's'}")
    return {"repository": repository, "tags": len(found)}
