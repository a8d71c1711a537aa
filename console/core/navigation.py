"""The side menu, in one place, so pages and tests agree on it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    icon: str


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
    MenuItem("Settings", "settings", "⚙"),
)


# Pages whose app is not built yet: core serves a page that says so plainly.
# Whoever builds one removes its name here and routes it in its app's urls.
NOT_BUILT_YET = ("settings",)
