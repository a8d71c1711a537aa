"""Signing in (password, then the two-factor code when the user turned it on)
and the two-factor settings page."""

from __future__ import annotations

import time

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from console import audit
from console.accounts import signin, twofactor
from console.accounts.signin_form import SignInForm

PENDING = "berth_two_factor_pending"
PENDING_SECONDS = 300


class CodeForm(forms.Form):
    code = forms.CharField(max_length=12, label="Code from your authenticator app",
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                         "autofocus": True}))


class SignInView(auth_views.LoginView):
    template_name = "core/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if twofactor.enabled(user):
            # The password was right; the session is not signed in until the code is.
            self.request.session[PENDING] = {"user": user.pk, "at": time.time(),
                                             "backend": user.backend, "next": self.get_success_url()}
            return redirect("login_code")
        signin.succeeded(user.get_username(), signin.client_ip(self.request))
        return super().form_valid(form)


@login_not_required
@sensitive_post_parameters()
@csrf_protect
@never_cache
def sign_in_code(request):
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return redirect("login")
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is None:
        return redirect("login")
    form = CodeForm(request.POST or None)
    ip = signin.client_ip(request)
    if request.method == "POST" and form.is_valid():
        seconds = signin.locked_for(user.get_username(), ip)
        device = twofactor.device_of(user)
        if seconds:
            form.add_error(None, SignInForm.error_messages["locked"] % {"seconds": seconds})
        elif device is not None and twofactor.verify(device, form.cleaned_data["code"]):
            del request.session[PENDING]
            user.backend = pending["backend"]
            auth_login(request, user, backend=pending["backend"])
            signin.succeeded(user.get_username(), ip)
            target = pending.get("next") or "/"
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "/"
            return redirect(target)
        else:
            signin.failed(user.get_username(), ip, request)
            audit.record(user=None, action="auth.two_factor", target_type="user", target_id=str(user.pk),
                         target_name=user.get_username(), outcome="denied")
            form.add_error("code", "That code is not right (or was already used).")
    return render(request, "accounts/login_code.html", {"form": form}, status=400 if form.errors else 200)



def two_factor(request):
    """Turn two-factor on (scan or type the key, then confirm a code) or off (with a code)."""
    user = request.user
    device = twofactor.device_of(user)
    form = CodeForm(request.POST or None)
    action = request.POST.get("action")
    if request.method == "POST":
        if action == "begin":
            twofactor.begin(user)
            return redirect("two_factor")
        if form.is_valid() and device is not None:
            if action == "confirm" and not device.enabled and twofactor.confirm(device, form.cleaned_data["code"]):
                audit.record(user=user, action="user.two_factor_on", target_type="user", target_id=str(user.pk),
                             target_name=user.get_username())
                messages.success(request, "Two-factor sign-in is on.")
                return redirect("two_factor")
            if action == "disable" and device.enabled and twofactor.verify(device, form.cleaned_data["code"]):
                twofactor.disable(user)
                audit.record(user=user, action="user.two_factor_off", target_type="user",
                             target_id=str(user.pk), target_name=user.get_username())
                messages.success(request, "Two-factor sign-in is off.")
                return redirect("two_factor")
            form.add_error("code", "That code is not right (or was already used).")
    context = {"device": device, "form": form, "section": "two_factor"}
    if device is not None and not device.enabled:
        context["secret"] = twofactor.secret(device)
        context["uri"] = twofactor.provisioning_uri(device)
    return render(request, "accounts/two_factor.html", context, status=400 if form.errors else 200)
