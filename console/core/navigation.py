"""The side menu, in one place, so pages and tests agree on it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    icon: str
    built: bool  # False: the page says plainly that it is not built yet


MENU = (
    MenuItem("Dashboard", "dashboard", "▦", True),
    MenuItem("Containers", "containers", "▣", False),
    MenuItem("Images", "images", "◧", True),
    MenuItem("Registries", "registries", "⌂", False),
    MenuItem("Volumes", "volumes", "◍", False),
    MenuItem("Networks", "networks", "⋈", False),
    MenuItem("Operations", "operations", "↻", True),
    MenuItem("Users & Teams", "users", "☺", False),
    MenuItem("Audit log", "audit", "☰", False),
    MenuItem("Settings", "settings", "⚙", False),
)
