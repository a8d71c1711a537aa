"""The side menu, in one place, so pages and tests agree on it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    icon: str
    administrators_only: bool = False  # shown to global administrators alone (the page checks again)


MENU = (
    MenuItem("Dashboard", "dashboard", "▦"),
    MenuItem("Containers", "containers", "▣"),
    MenuItem("Images", "images", "◧"),
    MenuItem("Registries", "registries", "⌂"),
    MenuItem("Volumes", "volumes", "◍"),
    MenuItem("Networks", "networks", "⋈"),
    MenuItem("Operations", "operations", "↻"),
    MenuItem("Events", "events", "ϟ"),
    MenuItem("Users & Teams", "users", "☺"),
    MenuItem("Audit log", "audit", "☰"),
    MenuItem("Settings", "settings", "⚙", administrators_only=True),
)


def menu_for(user) -> list[MenuItem]:
    """The entries this user sees."""
    administrator = bool(user.is_active and user.is_superuser)
    return [item for item in MENU if administrator or not item.administrators_only]
