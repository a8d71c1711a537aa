"""The sign-in form: one message for a wrong name or password, and the lockout (signin.py)."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

WRONG = "Wrong username or password."


class SignInForm(AuthenticationForm):
    """Django's form; its one message never says whether the user exists.

    Repeated failures lock the name (and the address) out for a while, with the
    same message whether or not the name exists (``console.accounts.signin``).
    """

    error_messages = {
        "invalid_login": WRONG,
        "inactive": WRONG,
        "locked": "Too many failed sign-ins. Try again in %(seconds)s seconds.",
    }

    username = forms.CharField(widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))

    def clean(self):
        from console.accounts import signin

        username = self.cleaned_data.get("username") or ""
        ip = signin.client_ip(self.request)
        seconds = signin.locked_for(username, ip)
        if seconds:
            raise ValidationError(self.error_messages["locked"], code="locked", params={"seconds": seconds})
        try:
            return super().clean()
        except ValidationError:
            signin.failed(username, ip, self.request)
            raise
