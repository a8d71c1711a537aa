"""Users & Teams pages: users, teams, roles (with the published matrix),
assignments and effective access. Every change goes through ``services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access import catalog
from console.access.models import Assignment, Role
from console.access.permissions import has_permission, has_role, require
from console.access.roles import ensure_builtin_roles
from console.accounts import services, twofactor
from console.accounts.forms import (
    AssignmentForm,
    MemberForm,
    PasswordResetForm,
    RoleForm,
    TeamForm,
    UserAssignmentForm,
    UserCreateForm,
    UserEditForm,
)
from console.accounts.models import Membership, Team
from console.core.environments import current_environment

User = get_user_model()
PAGE_SIZE = 50


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _manager(request) -> bool:
    return has_permission(request.user, "users.manage")


# Users

def user_list(request):
    if not _manager(request):
        return redirect("effective_access")
    users = User.objects.annotate(team_count=Count("memberships", distinct=True)).order_by("username")
    query = request.GET.get("q", "").strip()
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/users.html", {"page": page, "query": query, "section": "users"})


def user_create(request):
    require(request.user, "users.manage")
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.create_user(request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"User {user.username} created. Give them a role in an environment.")
            return redirect("user_detail", user.pk)
    return render(request, "accounts/user_create.html", {"form": form, "section": "users"},
                  status=400 if form.errors else 200)


def user_detail(request, pk):
    require(request.user, "users.manage")
    subject = get_object_or_404(User, pk=pk)
    edit_form = UserEditForm(initial={"email": subject.email, "is_active": subject.is_active,
                                      "is_superuser": subject.is_superuser})
    password_form = PasswordResetForm()
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("form") == "two_factor_off":
                services.turn_off_two_factor(request.user, subject)
                messages.success(request, f"Two-factor sign-in is off for {subject.username}.")
                return redirect("user_detail", subject.pk)
            if request.POST.get("form") == "password":
                password_form = PasswordResetForm(request.POST)
                if password_form.is_valid():
                    services.reset_password(request.user, subject, password_form.cleaned_data["password"])
                    messages.success(request, f"{subject.username}'s password was reset.")
                    return redirect("user_detail", subject.pk)
            else:
                edit_form = UserEditForm(request.POST)
                if edit_form.is_valid():
                    services.update_user(request.user, subject, **edit_form.cleaned_data)
                    messages.success(request, f"{subject.username} saved.")
                    return redirect("user_detail", subject.pk)
        except ValidationError as exc:
            _apply_errors(password_form if request.POST.get("form") == "password" else edit_form, exc)
        status = 400
    context = {
        "subject": subject, "edit_form": edit_form, "password_form": password_form,
        "memberships": Membership.objects.filter(user=subject).select_related("team"),
        "assignments": Assignment.objects.filter(user=subject).select_related("role", "environment"),
        "assignment_form": AssignmentForm(initial={"environment": current_environment(request)}),
        "section": "users", "two_factor": twofactor.enabled(subject),
    }
    ensure_builtin_roles()
    return render(request, "accounts/user_detail.html", context, status=status)


# Teams

def team_list(request):
    teams = Team.objects.annotate(member_count=Count("memberships", distinct=True))
    manager = _manager(request)
    if not manager:
        teams = teams.filter(memberships__user=request.user)
    return render(request, "accounts/teams.html", {"teams": teams.order_by("name"), "can_manage": manager,
                                                   "section": "teams"})


def team_create(request):
    require(request.user, "users.manage")
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.create_team(request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return redirect("team_detail", team.pk)
    return render(request, "accounts/team_create.html", {"form": form, "section": "teams"},
                  status=400 if form.errors else 200)


def _visible_team(request, pk):
    """Administrators see every team; others only the teams they are in (else 404)."""
    teams = Team.objects.all()
    if not _manager(request):
        teams = teams.filter(memberships__user=request.user).distinct()
    return get_object_or_404(teams, pk=pk)


def team_detail(request, pk):
    team = _visible_team(request, pk)
    ensure_builtin_roles()
    context = {
        "team": team, "section": "teams",
        "memberships": team.memberships.select_related("user").order_by("user__username"),
        "assignments": team.role_assignments.select_related("role", "environment"),
        "can_manage": _manager(request),
        "can_manage_members": services.can_manage_members(request.user, team),
        "member_form": MemberForm(),
        "assignment_form": AssignmentForm(initial={"environment": current_environment(request)}),
    }
    return render(request, "accounts/team_detail.html", context)


@require_POST
def team_add_member(request, pk):
    team = _visible_team(request, pk)
    form = MemberForm(request.POST)
    if form.is_valid():
        services.add_member(request.user, team, form.cleaned_data["user"], leader=form.cleaned_data["leader"])
        messages.success(request, f"{form.cleaned_data['user']} is in {team}.")
    else:
        messages.error(request, "Pick an active user.")
    return redirect("team_detail", team.pk)


@require_POST
def team_remove_member(request, pk, user_pk):
    team = _visible_team(request, pk)
    member = get_object_or_404(User, pk=user_pk, memberships__team=team)
    services.remove_member(request.user, team, member)
    messages.success(request, f"{member} left {team}.")
    return redirect("team_detail", team.pk) if Membership.objects.filter(
        team=team, user=request.user).exists() or _manager(request) else redirect("teams")


@require_POST
def team_delete(request, pk):
    team = _visible_team(request, pk)
    services.delete_team(request.user, team)
    messages.success(request, f"Team {team} deleted.")
    return redirect("teams")


# Roles

def role_list(request):
    if not has_role(request.user):  # what each role may do is for those who hold one
        raise PermissionDenied("You hold no role.")
    ensure_builtin_roles()
    roles = list(Role.objects.annotate(assignment_count=Count("assignments")).order_by("-builtin_key", "name"))
    builtin = [r for r in roles if r.builtin]
    builtin.sort(key=lambda r: [b.key for b in catalog.BUILTIN_ROLES].index(r.builtin_key)
                 if r.builtin_key in catalog.BUILTIN_BY_KEY else 99)
    custom = [r for r in roles if not r.builtin]
    columns = builtin + custom
    matrix = [
        {"group": group, "rows": [
            {"permission": p, "cells": [_cell(role, p) for role in columns]}
            for p in catalog.PERMISSIONS if catalog.group_of(p.name) == group]}
        for group in catalog.GROUPS
    ]
    return render(request, "accounts/roles.html", {
        "columns": columns, "matrix": matrix, "custom": custom, "scopes": catalog.SCOPES,
        "can_manage": _manager(request), "section": "roles",
    })


def _cell(role, permission) -> str:
    """"yes", "owned" (only on what ownership lets them see), or ""."""
    if permission.name not in role.permissions:
        return ""
    if role.effective_scope == catalog.SCOPE_OWNED:
        return "" if permission.environment_wide else "owned"
    return "yes"


def role_edit(request, pk=None):
    require(request.user, "users.manage")
    role = get_object_or_404(Role, pk=pk, builtin_key="") if pk else None
    initial = ({"name": role.name, "description": role.description, "scope": role.scope,
                "permissions": role.stored_permissions} if role else {"scope": catalog.SCOPE_OWNED})
    form = RoleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if role:
                services.update_role(request.user, role, **form.cleaned_data)
            else:
                role = services.create_role(request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Role {role} saved.")
            return redirect("roles")
    return render(request, "accounts/role_edit.html", {"form": form, "role": role, "section": "roles"},
                  status=400 if form.errors else 200)


@require_POST
def role_delete(request, pk):
    role = get_object_or_404(Role, pk=pk)
    try:
        services.delete_role(request.user, role)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Role {role} deleted.")
    return redirect("roles")


# Assignments

@require_POST
def assignment_create(request):
    require(request.user, "users.manage")
    form = UserAssignmentForm(request.POST)
    back = request.POST.get("next") or "roles"
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    else:
        data = form.cleaned_data
        try:
            services.assign(request.user, role=data["role"], environment=data["environment"],
                            user=data["user"], team=data["team"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{data['user'] or data['team']} is {data['role']} in {data['environment']}.")
    return redirect(_safe_back(back))


@require_POST
def assignment_delete(request, pk):
    require(request.user, "users.manage")
    assignment = get_object_or_404(Assignment, pk=pk)
    services.unassign(request.user, assignment)
    messages.success(request, f"Removed: {assignment}.")
    return redirect(_safe_back(request.POST.get("next") or "roles"))


def _safe_back(target: str) -> str:
    return target if target.startswith("/users/") else "roles"


# Effective access

def effective_access(request):
    """What a user may do in each environment, and why. Administrators pick anyone; others see themselves."""
    manager = _manager(request)
    subject = request.user
    chosen = request.GET.get("user")
    if chosen:
        if not manager and chosen != str(request.user.pk):
            raise Http404
        subject = get_object_or_404(User, pk=chosen)
    return render(request, "accounts/access.html", {
        "subject": subject, "rows": services.effective_access(subject), "can_manage": manager,
        "users": User.objects.order_by("username") if manager else [], "section": "access",
        "teams": Membership.objects.filter(user=subject).select_related("team"),
    })


# Ownership of one resource

OWNABLE_VIEW = {"image": "images.view", "container": "containers.view", "volume": "volumes.view",
                "network": "networks.view"}


def ownership_detail(request, kind, engine_id):
    """Who owns a resource of the current environment and who may see it; change it when allowed."""
    from console.access import ownership, sharing
    from console.accounts.forms import OwnershipForm

    if kind not in OWNABLE_VIEW:
        raise Http404
    environment = current_environment(request)
    require(request.user, OWNABLE_VIEW[kind], environment)
    if not has_permission(request.user, OWNABLE_VIEW[kind], environment, (kind, engine_id)):
        raise Http404
    _mirrored_or_404(environment, kind, engine_id)
    record = ownership.ownership_of(environment, kind, engine_id)
    can_change = sharing.can_change(request.user, environment, kind, engine_id)
    initial = {"visibility": record.visibility if record else "administrators",
               "users": list(record.users.all()) if record else [],
               "teams": list(record.teams.all()) if record else []}
    form = OwnershipForm(request.POST or None, initial=initial)
    # Only whom this user may name: their teammates and teams (administrators: everyone).
    form.fields["owner"].queryset = form.fields["users"].queryset = sharing.assignable_users(
        request.user, environment)
    form.fields["teams"].queryset = sharing.assignable_teams(request.user, environment)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                sharing.change(request.user, environment, kind, engine_id, visibility=data["visibility"],
                                 users=data["users"], teams=data["teams"], owner=data["owner"])
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, "Ownership saved.")
                return redirect("ownership", kind, engine_id)
    return render(request, "accounts/ownership.html", {
        "kind": kind, "engine_id": engine_id, "record": record, "form": form, "can_change": can_change,
        "environment": environment, "section": "",
    }, status=400 if form.errors else 200)


def _mirrored_or_404(environment, kind, engine_id):
    """Only resources the console knows of (in the mirror) have an ownership page."""
    from django.apps import apps

    from console.access import ownership

    for label, (known_kind, id_field) in ownership.KINDS.items():
        if known_kind != kind:
            continue
        try:
            model = apps.get_model(label)
        except LookupError:
            return  # no mirror for this kind yet
        get_object_or_404(model, environment=environment, **{id_field: engine_id})
        return
