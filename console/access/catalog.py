"""Every permission the console checks, and the built-in roles, in one place.

A permission is named per action (``images.pull``). A role is a set of
permissions plus a *scope*:

- ``environment``: the role applies to every resource in the environment,
  whoever owns it (Environment administrator, Operator, Helpdesk);
- ``owned``: the role applies only to resources the user may see through
  ownership: public ones, and restricted ones that name the user or one of
  their teams (Standard user, Read-only).

Some permissions act on the whole environment at once (``images.prune``
removes every unused image, whoever pulled it): they count only from roles
with the ``environment`` scope. ``users.manage`` belongs to the global
administrator alone and is in no role.

``docs/roles.md`` is generated from this module (``python -m
console.access.matrix``) and a test checks that it matches.
"""

from __future__ import annotations

from dataclasses import dataclass

SCOPE_ENVIRONMENT = "environment"
SCOPE_OWNED = "owned"
SCOPES = {
    SCOPE_ENVIRONMENT: "Every resource in the environment",
    SCOPE_OWNED: "Only resources the user may see through ownership",
}


@dataclass(frozen=True)
class Permission:
    name: str
    label: str
    environment_wide: bool = False  # acts on everything at once: needs the environment scope
    global_only: bool = False  # the global administrator's alone; in no role


PERMISSIONS: tuple[Permission, ...] = (
    Permission("containers.view", "See containers and their details"),
    Permission("containers.logs", "Read container logs"),
    Permission("containers.terminal", "Open a terminal in a container (exec, attach)"),
    Permission("containers.create", "Create and run containers"),
    Permission("containers.operate", "Start, stop, restart, kill, pause and resume containers"),
    Permission("containers.recreate", "Edit, recreate and rename containers"),
    Permission("containers.remove", "Remove containers"),
    Permission("images.view", "See images and their details"),
    Permission("images.pull", "Pull images"),
    Permission("images.push", "Push images to a registry"),
    Permission("images.build", "Build images (and commit containers)"),
    Permission("images.import_export", "Import and export image archives"),
    Permission("images.tag", "Add tags to images"),
    Permission("images.remove", "Remove images and tags"),
    Permission("images.prune", "Prune unused images", environment_wide=True),
    Permission("registries.view", "See registries"),
    Permission("registries.use", "Use a registry's credentials (pull, push, browse)"),
    Permission("registries.manage", "Add, edit and remove registries and their credentials"),
    Permission("volumes.view", "See volumes"),
    Permission("volumes.create", "Create volumes"),
    Permission("volumes.remove", "Remove volumes"),
    Permission("volumes.prune", "Prune unused volumes", environment_wide=True),
    Permission("networks.view", "See networks"),
    Permission("networks.create", "Create networks"),
    Permission("networks.remove", "Remove networks"),
    Permission("networks.prune", "Prune unused networks", environment_wide=True),
    Permission("operations.view", "See operations (with the owned scope: only one's own)"),
    Permission("audit.view", "Read the audit log", environment_wide=True),
    Permission("users.manage", "Manage users, teams, roles and assignments", global_only=True),
)
BY_NAME = {p.name: p for p in PERMISSIONS}
NAMES = tuple(p.name for p in PERMISSIONS)
ASSIGNABLE = tuple(p.name for p in PERMISSIONS if not p.global_only)


def group_of(name: str) -> str:
    return name.split(".", 1)[0]


GROUPS = tuple(dict.fromkeys(group_of(n) for n in NAMES))


@dataclass(frozen=True)
class BuiltinRole:
    key: str
    name: str
    description: str
    scope: str
    permissions: frozenset[str]


_VIEW = {"containers.view", "containers.logs", "images.view", "registries.view", "volumes.view",
         "networks.view", "operations.view"}

BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole(
        "environment-admin", "Environment administrator",
        "Everything in the environment, including the dangerous container options; "
        "not users, teams, roles or registry credentials (global).",
        SCOPE_ENVIRONMENT, frozenset(ASSIGNABLE) - {"registries.manage"},
    ),
    BuiltinRole(
        "operator", "Operator",
        "Operates what exists: start, stop, restart, logs, terminal. Creates and removes nothing.",
        SCOPE_ENVIRONMENT, frozenset(_VIEW | {"containers.operate", "containers.terminal"}),
    ),
    BuiltinRole(
        "helpdesk", "Helpdesk",
        "Sees everything in the environment and reads logs. No terminal, no changes.",
        SCOPE_ENVIRONMENT, frozenset(_VIEW),
    ),
    BuiltinRole(
        "standard", "Standard user",
        "Full control of what they or their teams own (and of public resources); "
        "no push, export or prune.",
        SCOPE_OWNED, frozenset(_VIEW | {
            "containers.terminal", "containers.create", "containers.operate", "containers.recreate",
            "containers.remove", "images.pull", "images.build", "images.tag", "images.remove",
            "registries.use", "volumes.create", "volumes.remove", "networks.create", "networks.remove",
        }),
    ),
    BuiltinRole(
        "read-only", "Read-only",
        "Sees, and reads the logs of, what they may see through ownership. Changes nothing.",
        SCOPE_OWNED, frozenset(_VIEW),
    ),
)
BUILTIN_BY_KEY = {r.key: r for r in BUILTIN_ROLES}

# The role whose holders (with the global administrators) may use privileged mode,
# host network or PID, host bind mounts, added capabilities and devices.
DANGEROUS_OPTIONS_ROLE = "environment-admin"

for _role in BUILTIN_ROLES:  # the matrix names only permissions of the catalog
    assert _role.permissions <= set(ASSIGNABLE), _role.permissions - set(ASSIGNABLE)
