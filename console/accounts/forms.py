from django import forms
from django.contrib.auth import get_user_model

from console.access import catalog
from console.access.models import Ownership, Role
from console.accounts.models import Team
from console.core.models import Environment

User = get_user_model()


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text="At least 10 characters, not a common password.")
    is_superuser = forms.BooleanField(required=False, label="Administrator (may do everything, everywhere)")


class UserEditForm(forms.Form):
    email = forms.EmailField(required=False)
    is_active = forms.BooleanField(required=False, label="Active (a disabled user cannot sign in)")
    is_superuser = forms.BooleanField(required=False, label="Administrator (may do everything, everywhere)")


class PasswordResetForm(forms.Form):
    password = forms.CharField(label="New password",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=300, required=False)


class MemberForm(forms.Form):
    user = forms.ModelChoiceField(User.objects.filter(is_active=True).order_by("username"),
                                  to_field_name="username")
    leader = forms.BooleanField(required=False, label="Team leader (manages this team's members)")


def permission_choices():
    return [(group, [(p.name, f"{p.name}: {p.label}") for p in catalog.PERMISSIONS
                     if catalog.group_of(p.name) == group and not p.global_only])
            for group in catalog.GROUPS if group != "users"]


class RoleForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=300, required=False)
    scope = forms.ChoiceField(choices=list(catalog.SCOPES.items()), widget=forms.RadioSelect)
    permissions = forms.MultipleChoiceField(choices=permission_choices, widget=forms.CheckboxSelectMultiple,
                                            required=False)


class AssignmentForm(forms.Form):
    role = forms.ModelChoiceField(Role.objects.all())
    environment = forms.ModelChoiceField(Environment.objects.order_by("name"))


class UserAssignmentForm(AssignmentForm):
    user = forms.ModelChoiceField(User.objects.order_by("username"), required=False)
    team = forms.ModelChoiceField(Team.objects.all(), required=False)

    def clean(self):
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("team")):
            raise forms.ValidationError("Pick a user or a team.")
        return data


class OwnershipForm(forms.Form):
    visibility = forms.ChoiceField(choices=Ownership.Visibility.choices, widget=forms.RadioSelect)
    owner = forms.ModelChoiceField(User.objects.filter(is_active=True).order_by("username"), required=False,
                                   to_field_name="username", help_text="Leave empty to keep the owner.")
    users = forms.ModelMultipleChoiceField(User.objects.filter(is_active=True).order_by("username"),
                                           required=False, widget=forms.CheckboxSelectMultiple)
    teams = forms.ModelMultipleChoiceField(Team.objects.all(), required=False,
                                           widget=forms.CheckboxSelectMultiple)


def add_access_fields(form, user, environment):
    """Add "who may see what this makes" to a create form (pull, create container, volume...).

    Non-administrators choose between restricted (the default: themselves and the teams
    they pick) and public; administrators may also hide it as administrators-only. Put
    ``access_parameters(form.cleaned_data)`` in the operation's ``parameters["access"]``
    and the runner's ownership hook applies it.
    """
    from console.access.permissions import can_use_dangerous_options

    choices = [(Ownership.Visibility.RESTRICTED, "Me and the teams I pick"),
               (Ownership.Visibility.PUBLIC, "Everyone with access to this environment")]
    if can_use_dangerous_options(user, environment):  # administrators and environment administrators
        choices.append((Ownership.Visibility.ADMINISTRATORS, "Administrators only"))
    form.fields["visibility"] = forms.ChoiceField(choices=choices, initial=Ownership.Visibility.RESTRICTED,
                                                  label="Who may see it", required=False)
    teams = Team.objects.all() if user.is_superuser else Team.objects.filter(memberships__user=user)
    form.fields["share_teams"] = forms.ModelMultipleChoiceField(
        teams.distinct().order_by("name"), required=False, label="Teams",
        help_text="By default, your teams that hold a role here.")
    return form


def access_parameters(cleaned_data) -> dict:
    access = {"visibility": cleaned_data.get("visibility") or Ownership.Visibility.RESTRICTED}
    teams = cleaned_data.get("share_teams")
    if teams:
        access["teams"] = [team.pk for team in teams]
    return access
