"""The console-wide settings an administrator may change on the Settings page, in one place.

Each setting has a Django setting that gives its default (read from a ``BERTH_*``
environment variable in ``console/settings.py``). ``get(key)`` is the value in force:
the one stored on the Settings page when an administrator set one, else the Django
setting's value, so ``override_settings`` keeps working where nothing is stored.

- ``get(key)``, ``get_many(*keys)``: one small query, whatever the number of keys.
  Call them from synchronous code (wrap in ``database_sync_to_async`` in a consumer).
- ``entries()``: every setting with its value in force and where it comes from.
- ``SETTINGS[key].clean(value)``: the value checked and typed, or ``ValidationError``.

Change settings only through ``console.sitesettings.services``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

log = logging.getLogger(__name__)

BOOL, INT, HOSTS = "bool", "int", "hosts"
MIB = 1024 * 1024

AUDIT = "Audit log"
SIGN_IN = "Sign-in protection"
REGISTRIES = "Registries"
SECTIONS = {
    AUDIT: "What the audit log keeps of terminal sessions, and for how long it keeps records.",
    SIGN_IN: "Failed sign-ins before a lockout. Each new failure past the threshold locks out for twice as "
             "long as the last (30 seconds, 1 minute, 2 minutes... up to 15 minutes).",
    REGISTRIES: "Which registries pulls, pushes and builds may reach (console.registries.reach).",
}
# A registry host pattern: "*", "*.example.com", "host", "host:port", "[v6]:port".
HOST_PATTERN = re.compile(r"\*|(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?|\[[0-9a-f:.]+\](:[0-9]{1,5})?")

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,18}")


@dataclass(frozen=True)
class Setting:
    key: str
    section: str
    label: str
    help_text: str
    kind: str  # BOOL, INT or HOSTS (a list of registry host patterns)
    django_setting: str  # gives the default
    env_var: str  # where the Django setting comes from
    fallback: bool | int  # when the Django setting is missing
    minimum: int | None = None  # bounds in stored units (bytes for a size)
    maximum: int | None = None
    unit: str = ""  # as the page shows the value: "MiB", "days"...
    scale: int = 1  # stored value = shown value x scale

    def default(self) -> bool | int:
        """The environment's value: the Django setting."""
        return getattr(settings, self.django_setting, self.fallback)

    def environment_is_set(self) -> bool:
        return self.env_var in os.environ

    # Checking values

    def parse(self, value) -> bool | int | list:
        """``value`` typed (stored units), or ``ValidationError``; the bounds are not checked."""
        if self.kind == HOSTS:
            items = value if isinstance(value, (list, tuple)) else re.split(r"[\s,]+", str(value))
            hosts = [str(item).strip().lower() for item in items if str(item).strip()]
            bad = [host for host in hosts if not HOST_PATTERN.fullmatch(host)]
            if bad:
                raise ValidationError(f"Not a registry host: {', '.join(bad)} (write host, host:port, "
                                      "*.example.com or *).", code="invalid")
            return sorted(set(hosts), key=hosts.index)
        if self.kind == BOOL:
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower() if isinstance(value, (str, int)) else None
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise ValidationError("Choose on or off.", code="invalid")
        if isinstance(value, bool):
            raise ValidationError("Enter a whole number.", code="invalid")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
            return int(value.strip())
        raise ValidationError("Enter a whole number.", code="invalid")

    def check_bounds(self, value: bool | int) -> None:
        if self.kind != INT:
            return
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            low, high = self.shown(self.minimum), self.shown(self.maximum)
            unit = f" {self.unit}" if self.unit else ""
            raise ValidationError(f"Enter a whole number from {low} to {high}{unit}.", code="bounds")

    def clean(self, value) -> bool | int:
        """``value`` typed and within bounds, or ``ValidationError``."""
        value = self.parse(value)
        self.check_bounds(value)
        return value

    def valid(self, value) -> bool:
        """Is a stored value of the right type? (Not its bounds: those are checked when it is set.)"""
        if self.kind == HOSTS:
            return isinstance(value, list) and all(isinstance(item, str) for item in value)
        if self.kind == BOOL:
            return isinstance(value, bool)
        return isinstance(value, int) and not isinstance(value, bool)

    # Showing values

    def shown(self, value):
        """The value in the page's unit (a size in whole MiB, rounded)."""
        if self.kind == HOSTS:
            return "\n".join(value or [])
        if value is None or self.kind == BOOL or self.scale == 1:
            return value
        return round(value / self.scale)

    def from_shown(self, text: str, current: bool | int):
        """What the page's field holds, back in stored units. Text that is not a whole number
        is returned as it is, for ``clean`` to say what is wrong with it. A size left as it was
        shown keeps its exact value (an environment value need not be a whole MiB)."""
        if self.kind in (BOOL, HOSTS):
            return text
        if not WHOLE_NUMBER.fullmatch(str(text).strip()):
            return text
        number = int(str(text).strip())
        if self.scale != 1:
            if number == self.shown(current):
                return current
            return number * self.scale
        return number

    def describe(self, value) -> str:
        """The value in words, for messages and the page: "on", "16 MiB", "365 days"."""
        if self.kind == BOOL:
            return "on" if value else "off"
        if self.kind == HOSTS:
            return ", ".join(value) if value else "none"
        if self.scale != 1 and value % self.scale:
            return f"{value:,} bytes"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.shown(value)}{unit}"


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting(
        "audit_record_terminals", AUDIT, "Record terminal sessions",
        "Keep what each terminal session showed as an asciicast recording, to replay from the audit log.",
        BOOL, "BERTH_AUDIT_RECORD_TERMINALS", "BERTH_AUDIT_RECORD_TERMINALS", True),
    Setting(
        "audit_record_terminal_input", AUDIT, "Also record what is typed",
        "Keep the keystrokes too, passwords included. Off, a recording still shows what was echoed back.",
        BOOL, "BERTH_AUDIT_RECORD_TERMINAL_INPUT", "BERTH_AUDIT_RECORD_TERMINAL_INPUT", False),
    Setting(
        "audit_recording_max_bytes", AUDIT, "Largest recording",
        "A recording stops growing at this size and says it was cut short.",
        INT, "BERTH_AUDIT_RECORDING_MAX_BYTES", "BERTH_AUDIT_RECORDING_MAX_BYTES", 16 * MIB,
        minimum=1 * MIB, maximum=256 * MIB, unit="MiB", scale=MIB),
    Setting(
        "audit_retention_days", AUDIT, "Keep audit records for",
        "Older records are archived to files, then purged, by the daily retention run. 0 keeps everything.",
        INT, "BERTH_AUDIT_RETENTION_DAYS", "BERTH_AUDIT_RETENTION_DAYS", 365,
        minimum=0, maximum=36500, unit="days"),
    Setting(
        "signin_user_threshold", SIGN_IN, "Failed sign-ins per user name from one address",
        "Failures with one user name (whether or not it exists) from one address before that name is "
        "locked out there; elsewhere it may still sign in. 0 turns this off.",
        INT, "SIGNIN_USER_THRESHOLD", "BERTH_SIGNIN_USER_THRESHOLD", 5,
        minimum=0, maximum=1000, unit="failures"),
    Setting(
        "signin_name_threshold", SIGN_IN, "Failed sign-ins per user name from anywhere",
        "Failures with one user name from all addresses together before it is locked out everywhere. "
        "Keep it much higher than the one above: anyone can type the name of an administrator. "
        "0 turns this off.",
        INT, "SIGNIN_NAME_THRESHOLD", "BERTH_SIGNIN_NAME_THRESHOLD", 100,
        minimum=0, maximum=100000, unit="failures"),
    Setting(
        "signin_ip_threshold", SIGN_IN, "Failed sign-ins per client address",
        "Failures from one address, whatever the names tried, before it is locked out. 0 turns this off; "
        "do so behind a reverse proxy, where every client has the proxy's address.",
        INT, "SIGNIN_IP_THRESHOLD", "BERTH_SIGNIN_IP_THRESHOLD", 20,
        minimum=0, maximum=10000, unit="failures"),
    Setting(
        "registry_allowlist", REGISTRIES, "Registries Berth may reach",
        "Docker Hub and the public hosts of the configured registries are always allowed. List more, one a "
        "line: host, host:port, *.example.com, or * for any public host. Loopback and private addresses "
        "(127.0.0.1, 10.0.0.5:5000...) are reached only when listed here.",
        HOSTS, "REGISTRY_ALLOWLIST", "BERTH_REGISTRY_ALLOWLIST", []),
)}


def _in_force(setting: Setting, stored: dict):
    if setting.key in stored:
        value = stored[setting.key]
        if setting.valid(value):
            return value
        log.warning("stored setting %s=%r is not a %s: using the environment's value", setting.key, value,
                    setting.kind)
    return setting.default()


def _stored(keys=None) -> dict:
    from console.sitesettings.models import SiteSetting

    rows = SiteSetting.objects.all() if keys is None else SiteSetting.objects.filter(key__in=keys)
    return dict(rows.values_list("key", "value"))


def get_many(*keys: str) -> dict:
    """``{key: value in force}`` for these keys, in one query. An unknown key is a KeyError."""
    chosen = [SETTINGS[key] for key in keys]
    stored = _stored(keys)
    return {setting.key: _in_force(setting, stored) for setting in chosen}


def get(key: str):
    """The value in force: the Settings page's, else the Django setting's (the environment's)."""
    return get_many(key)[key]


@dataclass(frozen=True)
class Entry:
    setting: Setting
    value: bool | int  # in force
    from_page: bool  # set on the Settings page (else from the environment)
    updated_at: object = None  # when and by whom it was set on the page
    updated_by: str = ""

    @property
    def source(self) -> str:
        return "page" if self.from_page else "environment"

    @property
    def environment_value(self):
        return self.setting.default()

    @property
    def environment_described(self) -> str:
        return self.setting.describe(self.environment_value)

    @property
    def env_set(self) -> bool:
        """Whether the environment variable is set (else the Django setting holds its default)."""
        return self.setting.environment_is_set()


def entries() -> list[Entry]:
    """Every setting, in catalogue order, with its value in force and its source (one query)."""
    from console.sitesettings.models import SiteSetting

    rows = {row.key: row for row in SiteSetting.objects.select_related("updated_by")}
    result = []
    for setting in SETTINGS.values():
        row = rows.get(setting.key)
        stored = {setting.key: row.value} if row is not None else {}
        value = _in_force(setting, stored)
        from_page = row is not None and setting.valid(row.value)
        result.append(Entry(setting, value, from_page,
                            updated_at=row.updated_at if from_page else None,
                            updated_by=(row.updated_by.get_username() if from_page and row.updated_by else "")))
    return result
