"""The Settings page: console-wide settings for global administrators. Every change goes
through ``services``; the page only shows and submits."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from console.sitesettings import catalog, services
from console.sitesettings.forms import SettingsForm


def _summary(changes: dict) -> str:
    return "; ".join(f"{catalog.SETTINGS[key].label}: {catalog.SETTINGS[key].describe(change['from'])} → "
                     f"{catalog.SETTINGS[key].describe(change['to'])}" for key, change in changes.items())


def _sections(form: SettingsForm) -> list[dict]:
    sections = []
    for name, description in catalog.SECTIONS.items():
        rows = [{"entry": entry, "field": form[key]} for key, entry in form.entries.items()
                if entry.setting.section == name]
        sections.append({"name": name, "description": description, "rows": rows})
    return sections


@require_http_methods(["GET", "HEAD", "POST"])
def settings_page(request):
    entries = catalog.entries()
    status = 200
    if request.method == "POST":
        form = SettingsForm(request.POST, entries=entries)
        form.is_valid()  # text fields and switches: the service checks the values
        try:
            changes = services.update_settings(request.user, form.values(), request=request)
        except ValidationError as exc:
            form.add_error(None, "Nothing was saved: correct the values marked below.")
            for key, errors in exc.message_dict.items():
                form.add_error(key if key in form.fields else None, errors)
            status = 400
        else:
            if changes:
                messages.success(request, f"Settings saved. {_summary(changes)}.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("settings")
    else:
        if not services.is_global_admin(request.user):
            raise PermissionDenied("Only administrators see the console's settings.")
        form = SettingsForm(entries=entries)
    return render(request, "sitesettings/settings.html",
                  {"form": form, "sections": _sections(form), "page_title": "Settings"}, status=status)


@require_POST
def reset(request):
    key = request.POST.get("key", "")
    try:
        changes = services.reset_setting(request.user, key, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("settings")
    if changes:
        setting = catalog.SETTINGS[key]
        messages.success(request, f"{setting.label} is back to the environment's value: "
                                  f"{setting.describe(changes[key]['to'])}.")
    return redirect("settings")
