from django import forms

from console.accounts.models import Team
from console.registries.models import Registry
from console.registries.services import ACR_REGIONS, acr_host


class RegistryForm(forms.Form):
    """Add or edit a registry. Field checks live in ``services`` (shared with the API); this form
    only turns an ACR region into its host. The secret is never rendered back."""

    name = forms.CharField(max_length=100, required=False, widget=forms.TextInput(attrs={"placeholder": "e.g. team-registry",
                                                                        "autocomplete": "off"}))
    kind = forms.ChoiceField(choices=Registry.Kind.choices, initial=Registry.Kind.V2, label="Kind")
    region = forms.ChoiceField(
        choices=[("", "Another host (personal or enterprise instance)")] + list(ACR_REGIONS),
        required=False, label="ACR region",
        help_text="A region's public endpoint is registry.<region>.aliyuncs.com.")
    host = forms.CharField(
        max_length=300, required=False, label="Host",
        widget=forms.TextInput(attrs={"placeholder": "registry.example.com or 10.0.0.5:5000",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="host[:port], without http:// (write http:// or tick the box below for plain HTTP).")
    insecure = forms.BooleanField(
        required=False, label="Insecure: plain HTTP or an unverified certificate",
        help_text="Loopback registries (127.0.0.1, localhost) always use plain HTTP.")
    username = forms.CharField(max_length=255, required=False,
                               widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
                               help_text="Leave empty for anonymous access.")
    secret = forms.CharField(
        max_length=4096, required=False, label="Password or token", strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False))
    clear_secret = forms.BooleanField(required=False, label="Clear the stored secret")
    use = forms.ChoiceField(choices=Registry.Use.choices, initial=Registry.Use.OWNER, widget=forms.RadioSelect,
                            required=False,
                            label="Who may use its credentials",
                            help_text="Test, browse, pull and push with them. Administrators and environment-wide "
                                      "roles always may; others see only the registries they may use.")
    teams = forms.ModelMultipleChoiceField(Team.objects.all(), required=False, label="Teams",
                                           help_text="Their members may use the credentials.")

    def __init__(self, *args, registry: Registry | None = None, **kwargs):
        self.registry = registry
        if registry is not None and "initial" not in kwargs:
            from console.registries.services import acr_region

            region = acr_region(registry.host) if registry.kind == Registry.Kind.ACR else ""
            kwargs["initial"] = {"name": registry.name, "kind": registry.kind, "region": region,
                                 "host": "" if region else registry.host, "insecure": registry.insecure,
                                 "username": registry.username, "use": registry.use,
                                 "teams": list(registry.teams.values_list("pk", flat=True))}
        super().__init__(*args, **kwargs)
        if registry is not None and registry.has_secret:
            self.fields["secret"].help_text = "A secret is set: leave empty to keep it."
            self.fields["secret"].widget.attrs["placeholder"] = "•••••••• (kept)"
        else:
            self.fields["secret"].help_text = "Stored encrypted; never shown back."

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        host = data.get("host", "")
        if data.get("kind") == Registry.Kind.ACR and data.get("region") and not host.strip():
            host = acr_host(data["region"])
        arguments = {"name": data.get("name", ""), "kind": data.get("kind", ""), "host": host,
                     "username": data.get("username", ""), "secret": data.get("secret", ""),
                     "insecure": data.get("insecure", False), "use": data.get("use") or Registry.Use.OWNER,
                     "teams": list(data.get("teams") or [])}
        if self.registry is not None:
            arguments["clear_secret"] = data.get("clear_secret", False)
        return arguments


class RepositoryForm(forms.Form):
    repository = forms.CharField(
        max_length=255, label="Repository",
        widget=forms.TextInput(attrs={"placeholder": "e.g. library/busybox or team/app",
                                      "autocomplete": "off", "spellcheck": "false"}))
