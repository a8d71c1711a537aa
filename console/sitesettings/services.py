"""Changing the console-wide settings: the only way the Settings page (or anything else)
does it.

Only a global administrator (an active superuser) may; a refusal is audited. Every value
is checked before anything is stored: one bad value stores none. Only what changes is
stored, and one ``settings.change`` audit event says what changed, with
``{key: {"from": old, "to": new}}`` (``"reset": true`` when a setting went back to the
environment's value).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from console import audit
from console.sitesettings import catalog

ACTION = "settings.change"
TARGET_TYPE = "settings"


def is_global_admin(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active
                and user.is_superuser)


def _check(by, request, details: dict) -> None:
    if not is_global_admin(by):
        # Outside any transaction: the refusal stays recorded.
        audit.record(user=by, action=ACTION, target_type=TARGET_TYPE, target_name="console settings",
                     outcome="denied", details=details, request=request)
        raise PermissionDenied("Only administrators change the console's settings.")


def _record(by, request, changes: dict) -> None:
    audit.record(user=by, action=ACTION, target_type=TARGET_TYPE, target_name=", ".join(changes),
                 details=changes, request=request)


def update_settings(by, values: dict, *, request=None) -> dict:
    """Set ``values`` (``{key: value}``, in stored units: bytes for a size; text is parsed).

    Returns ``{key: {"from": old, "to": new}}`` for what changed (empty when nothing did).
    Raises ``PermissionDenied`` for anyone but a global administrator, and
    ``ValidationError`` with one message per bad key, having stored nothing.
    A value equal to the one in force is not stored (nor checked against the bounds: an
    environment value outside them stays as it is until someone changes it here).
    """
    _check(by, request, {"keys": sorted(str(key) for key in values)})
    errors, parsed = {}, {}
    for key, raw in values.items():
        setting = catalog.SETTINGS.get(key)
        if setting is None:
            errors[str(key)] = [f"{key!r} is not a setting of this page."]
            continue
        try:
            parsed[key] = setting.parse(raw)
        except ValidationError as exc:
            errors[key] = exc.messages
    with transaction.atomic():
        current = catalog.get_many(*parsed)
        changes = {}
        for key, value in parsed.items():
            if value == current[key]:
                continue
            try:
                catalog.SETTINGS[key].check_bounds(value)
            except ValidationError as exc:
                errors[key] = exc.messages
                continue
            changes[key] = {"from": current[key], "to": value}
        if errors:
            raise ValidationError(errors)
        if not changes:
            return {}
        _record(by, request, changes)
        from console.sitesettings.models import SiteSetting

        for key, change in changes.items():
            SiteSetting.objects.update_or_create(key=key, defaults={"value": change["to"], "updated_by": by})
    return changes


def reset_setting(by, key: str, *, request=None) -> dict:
    """Go back to the environment's value for ``key`` (forget what was set on the page).

    Returns ``{key: {"from": old, "to": new, "reset": True}}``, or ``{}`` when nothing was set.
    """
    _check(by, request, {"keys": [str(key)], "reset": True})
    setting = catalog.SETTINGS.get(key)
    if setting is None:
        raise ValidationError(f"{key!r} is not a setting of this page.")
    from console.sitesettings.models import SiteSetting

    with transaction.atomic():
        row = SiteSetting.objects.select_for_update().filter(pk=key).first()
        if row is None:
            return {}
        old = catalog.get(key)
        changes = {key: {"from": old, "to": setting.default(), "reset": True}}
        _record(by, request, changes)
        row.delete()
    return changes
