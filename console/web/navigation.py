"""The side menu, in one place, so pages and tests agree on it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    icon: str
    administrators_only: bool = False  # shown to global administrators alone (the page checks again)
    # Shown to those who hold it in the current environment ("anywhere": in any of them).
    # For clarity only: the page checks again.
    permission: str = ""
    anywhere: bool = False


MENU = (
    MenuItem("Dashboard", "dashboard", "▦"),
    MenuItem("Containers", "containers", "▣", permission="containers.view"),
    MenuItem("Images", "images", "◧", permission="images.view"),
    MenuItem("Registries", "registries", "⌂", permission="registries.view"),
    MenuItem("Volumes", "volumes", "◍", permission="volumes.view"),
    MenuItem("Networks", "networks", "⋈", permission="networks.view"),
    MenuItem("Operations", "operations", "↻", permission="operations.view"),
    MenuItem("Events", "events", "ϟ", permission="containers.view"),
    MenuItem("Users & Teams", "users", "☺"),  # everyone: their own access, at least
    MenuItem("Audit log", "audit", "☰", permission="audit.view", anywhere=True),
    MenuItem("Settings", "settings", "⚙", administrators_only=True),
)


def menu_for(user, environment=None) -> list[MenuItem]:
    """The entries this user sees (one query or two, whatever the menu's length)."""
    from console.access.permissions import access_for

    if user.is_active and user.is_superuser:
        return list(MENU)
    here, anywhere = access_for(user, environment), None
    shown = []
    for item in MENU:
        if item.administrators_only:
            continue
        if item.permission:
            if item.anywhere:
                anywhere = anywhere or access_for(user)
            if (anywhere if item.anywhere else here).scope(item.permission) is None:
                continue
        shown.append(item)
    return shown
