"""The Settings page's form, made from the catalogue. It only carries the text typed:
the checking is ``services.update_settings``'s (``catalog.Setting.clean``)."""

from __future__ import annotations

from django import forms

from console.sitesettings import catalog


def _field(setting: catalog.Setting) -> forms.Field:
    if setting.kind == catalog.BOOL:
        return forms.BooleanField(required=False, label=setting.label, help_text=setting.help_text,
                                  widget=forms.CheckboxInput(attrs={"role": "switch"}))
    if setting.kind == catalog.HOSTS:
        return forms.CharField(required=False, label=setting.label, help_text=setting.help_text,
                               widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))
    attrs = {"step": 1, "inputmode": "numeric", "class": "number"}
    if setting.minimum is not None:
        attrs["min"] = setting.shown(setting.minimum)
    if setting.maximum is not None:
        attrs["max"] = setting.shown(setting.maximum)
    return forms.CharField(required=False, label=setting.label, help_text=setting.help_text,
                           widget=forms.NumberInput(attrs=attrs))


class SettingsForm(forms.Form):
    def __init__(self, *args, entries: list[catalog.Entry], **kwargs):
        kwargs.setdefault("initial", {e.setting.key: e.setting.shown(e.value) for e in entries})
        super().__init__(*args, **kwargs)
        self.entries = {e.setting.key: e for e in entries}
        for entry in entries:
            self.fields[entry.setting.key] = _field(entry.setting)

    def values(self) -> dict:
        """What was submitted, in stored units, for the service."""
        values = {}
        for key, entry in self.entries.items():
            if entry.setting.kind == catalog.BOOL:
                values[key] = self.cleaned_data.get(key, False)
            else:
                values[key] = entry.setting.from_shown(self.cleaned_data.get(key, ""), entry.value)
        return values
