from django import forms

from console.registries import access as registry_access
from console.registries.models import Registry


class _RegistryChoice(forms.Form):
    """Lists only the registries whose credentials ``user`` may use here (when given)."""

    def __init__(self, *args, user=None, environment=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            self.fields["registry"].queryset = registry_access.usable(user, environment)


class PullForm(_RegistryChoice):
    reference = forms.CharField(
        max_length=500, label="Image",
        widget=forms.TextInput(attrs={"placeholder": "busybox:latest or 127.0.0.1:5000/team/app:1.2"}))
    registry = forms.ModelChoiceField(
        Registry.objects.all(), required=False, empty_label="As written (Docker Hub by default)",
        help_text="Pick a configured registry to use its credentials and host.")
    platform = forms.CharField(max_length=60, required=False,
                               widget=forms.TextInput(attrs={"placeholder": "default: this host's, e.g. linux/amd64"}))


class TagForm(forms.Form):
    target = forms.CharField(max_length=500, label="New tag",
                             widget=forms.TextInput(attrs={"placeholder": "team/app:1.2"}))


class PushForm(_RegistryChoice):
    target = forms.CharField(max_length=500, label="Push as", required=False)
    registry = forms.ModelChoiceField(Registry.objects.all(), required=False, empty_label="As named")


class PruneForm(forms.Form):
    all = forms.BooleanField(required=False, label="All unused images, not only dangling ones")
