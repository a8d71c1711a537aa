"""The Settings page, from each side: the administrator who changes console-wide settings
(and sees them take effect where they are read), bad input that stores nothing, the
non-administrator who may neither see nor change them, and resetting to the environment."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from console import audit
from console.audit import retention
from console.audit.models import AuditEvent, TerminalRecording
from console.core.models import Environment
from console.sitesettings import catalog, services
from console.sitesettings.models import SiteSetting

pytestmark = pytest.mark.django_db

User = get_user_model()
MIB = 1024 * 1024
PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def local():
    return Environment.objects.get(name="local")


@pytest.fixture
def mo():
    """Signed in, with a role in local, but not a global administrator."""
    from console.access.roles import grant

    user = User.objects.create_user("mo", password=PASSWORD)
    grant(user, "operator", Environment.objects.get(name="local"))
    return user


@pytest.fixture
def mo_client(mo):
    client = Client()
    client.force_login(mo)
    return client


def form_data(**changes) -> dict:
    """What the page posts: every setting as shown (a switch is absent when off), with changes."""
    data = {}
    for entry in catalog.entries():
        setting = entry.setting
        if setting.kind == catalog.BOOL:
            if entry.value:
                data[setting.key] = "on"
        else:
            data[setting.key] = str(setting.shown(entry.value))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def save(client, **changes):
    return client.post(reverse("settings"), form_data(**changes))


def change_events(outcome="succeeded"):
    return list(AuditEvent.objects.filter(action="settings.change", outcome=outcome).order_by("id"))


# Reading

def test_values_come_from_the_environment_while_nothing_is_stored(settings):
    assert catalog.get("audit_retention_days") == settings.BERTH_AUDIT_RETENTION_DAYS
    assert catalog.get("signin_user_threshold") == settings.SIGNIN_USER_THRESHOLD
    with override_settings(SIGNIN_USER_THRESHOLD=9, BERTH_AUDIT_RECORD_TERMINALS=False):
        assert catalog.get_many("signin_user_threshold", "audit_record_terminals") == {
            "signin_user_threshold": 9, "audit_record_terminals": False}
    assert {entry.source for entry in catalog.entries()} == {"environment"}
    with pytest.raises(KeyError):
        catalog.get("no_such_setting")


def test_a_stored_value_wins_over_the_environment_and_reads_cost_one_query(admin, django_assert_num_queries):
    services.update_settings(admin, {"signin_user_threshold": 3, "audit_record_terminals": False})
    with override_settings(SIGNIN_USER_THRESHOLD=9):
        with django_assert_num_queries(1):
            values = catalog.get_many("signin_user_threshold", "signin_ip_threshold", "audit_record_terminals")
    assert values == {"signin_user_threshold": 3, "signin_ip_threshold": 20, "audit_record_terminals": False}


def test_a_stored_value_of_the_wrong_type_is_ignored(admin):
    SiteSetting.objects.create(key="audit_retention_days", value="forever")
    assert catalog.get("audit_retention_days") == 365


# The page

def test_the_page_shows_each_setting_in_its_section_with_help_and_source(admin_client):
    response = admin_client.get(reverse("settings"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h2>Audit log</h2>" in html and "<h2>Sign-in protection</h2>" in html
    assert html.index("<h2>Audit log</h2>") < html.index("Record terminal sessions") < html.index(
        "<h2>Sign-in protection</h2>") < html.index("Failed sign-ins per user name")
    for setting in catalog.SETTINGS.values():
        assert setting.label in html and setting.help_text.split(",")[0] in html
        assert f"<code>{setting.env_var}</code>" in html
    assert html.count("from the environment") == len(catalog.SETTINGS)
    assert 'name="audit_recording_max_bytes" value="16"' in html and ">MiB<" in html
    assert "sign-in thresholds to the next" in html and "terminals opened from now on" in html
    assert 'aria-current="page"' in html


def test_admin_turns_terminal_recording_off_and_no_recording_is_kept(admin_client, admin, local):
    response = save(admin_client, audit_record_terminals=None)  # the switch, off
    assert response.status_code == 302 and response["Location"] == reverse("settings")
    page = admin_client.get(reverse("settings")).content.decode()
    assert "Settings saved. Record terminal sessions: on → off." in page
    assert 'data-source="page"' in page and "set on this page" in page and "by admin" in page
    assert catalog.get("audit_record_terminals") is False

    recorder = audit.TerminalRecorder(80, 24, command="/bin/sh")
    recorder.output(b"$ ls\r\n", at=0.1)
    now = timezone.now()
    event = audit.record_terminal_session(user=admin, environment=local, container_id="c0ffee", command="sh",
                                          started_at=now, ended_at=now, recording=recorder)
    assert "recording" not in event.details and not recorder.events
    event = audit.record_terminal_session(user=admin, environment=local, container_id="c0ffee", command="sh",
                                          started_at=now, ended_at=now, recording='{"version": 2}\n')
    assert "recording" not in event.details
    assert not TerminalRecording.objects.exists()


def test_a_terminal_keeps_the_recording_settings_it_was_opened_with(admin, local):
    opened_before = audit.TerminalRecorder()
    services.update_settings(admin, {"audit_record_terminals": False})
    opened_after = audit.TerminalRecorder()
    services.update_settings(admin, {"audit_record_terminals": True, "audit_record_terminal_input": True,
                                     "audit_recording_max_bytes": 2 * MIB})
    assert opened_before.keep and not opened_before.keep_input and opened_before.max_bytes == 16 * MIB
    assert not opened_after.keep
    latest = audit.TerminalRecorder()
    latest.input(b"ls\r", at=0.1)
    assert latest.keep_input and latest.max_bytes == 2 * MIB and '"i"' in latest.events[0]
    now = timezone.now()
    event = audit.record_terminal_session(user=admin, environment=local, container_id="c", command="sh",
                                          started_at=now, ended_at=now, recording=opened_before)
    assert event.details["recording"]["format"] == "asciicast-v2"


def test_lowering_the_user_threshold_locks_out_sooner(admin_client):
    User.objects.create_user("nina", password=PASSWORD)
    assert save(admin_client, signin_user_threshold="2").status_code == 302
    stranger = Client()
    for _ in range(2):
        wrong = stranger.post("/login/", {"username": "nina", "password": "wrong"}).content.decode()
        assert "Wrong username or password." in wrong
    locked = stranger.post("/login/", {"username": "nina", "password": PASSWORD}).content.decode()
    assert "Too many failed sign-ins" in locked
    assert "_auth_user_id" not in stranger.session


def test_the_change_is_audited_once_with_from_and_to_and_an_unchanged_form_stores_nothing(admin_client, admin):
    save(admin_client, signin_user_threshold="3", audit_retention_days="90")
    [event] = change_events()
    assert event.actor_id == admin.pk and event.target_type == "settings"
    assert event.details == {"signin_user_threshold": {"from": 5, "to": 3},
                             "audit_retention_days": {"from": 365, "to": 90}}
    assert event.request_id and event.source_ip == "127.0.0.1"
    assert set(SiteSetting.objects.values_list("key", flat=True)) == {"signin_user_threshold",
                                                                       "audit_retention_days"}
    assert SiteSetting.objects.get(key="signin_user_threshold").updated_by == admin

    response = save(admin_client)  # the same values again
    assert response.status_code == 302
    assert "Nothing changed." in admin_client.get(reverse("settings")).content.decode()
    assert len(change_events()) == 1 and SiteSetting.objects.count() == 2


def test_the_size_is_shown_and_edited_in_mib(admin_client):
    save(admin_client, audit_recording_max_bytes="32")
    assert catalog.get("audit_recording_max_bytes") == 32 * MIB
    [event] = change_events()
    assert event.details == {"audit_recording_max_bytes": {"from": 16 * MIB, "to": 32 * MIB}}
    assert 'name="audit_recording_max_bytes" value="32"' in admin_client.get(reverse("settings")).content.decode()


def test_an_environment_value_outside_the_page_bounds_is_kept_while_unchanged(admin_client):
    with override_settings(BERTH_AUDIT_RECORDING_MAX_BYTES=200):
        response = save(admin_client)  # shows (and posts back) 0 MiB: 200 bytes rounded
        assert response.status_code == 302
        assert catalog.get("audit_recording_max_bytes") == 200
    assert not SiteSetting.objects.exists() and not change_events()


@pytest.mark.parametrize("key, typed, message", [
    ("signin_user_threshold", "-1", "Enter a whole number from 0 to 1000 failures."),
    ("audit_retention_days", "soon", "Enter a whole number."),
    ("audit_retention_days", "", "Enter a whole number."),
    ("signin_ip_threshold", "2.5", "Enter a whole number."),
    ("audit_recording_max_bytes", "1000", "Enter a whole number from 1 to 256 MiB."),
    ("audit_recording_max_bytes", "0", "Enter a whole number from 1 to 256 MiB."),
])
def test_bad_input_stores_nothing_and_says_why_beside_the_field(admin_client, key, typed, message):
    # A valid change posted with it is not stored either.
    response = save(admin_client, **{key: typed, "audit_record_terminals": None})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was saved: correct the values marked below." in html
    field = html[html.index(f'id="setting-{key}"'):]
    field = field[:field.index('class="setting-source"')]
    assert 'class="field-error"' in field and message in field
    assert f'value="{typed}"' in field or not typed  # what was typed is shown back
    assert not SiteSetting.objects.exists() and not change_events()
    assert catalog.get("audit_record_terminals") is True


def test_the_service_checks_every_value_and_stores_none_when_one_is_bad(admin):
    with pytest.raises(ValidationError) as caught:
        services.update_settings(admin, {"signin_user_threshold": 3, "audit_retention_days": -3,
                                         "audit_record_terminals": "maybe", "colour": "blue",
                                         "signin_ip_threshold": True})
    assert set(caught.value.message_dict) == {"audit_retention_days", "audit_record_terminals", "colour",
                                              "signin_ip_threshold"}
    assert caught.value.message_dict["audit_record_terminals"] == ["Choose on or off."]
    assert not SiteSetting.objects.exists() and not AuditEvent.objects.filter(action="settings.change").exists()
    # Text is parsed as a form or a command line would give it.
    assert services.update_settings(admin, {"audit_record_terminal_input": "on", "signin_ip_threshold": " 7 "}) == {
        "audit_record_terminal_input": {"from": False, "to": True}, "signin_ip_threshold": {"from": 20, "to": 7}}


# Who may

def test_a_non_administrator_may_neither_see_nor_change_the_settings(mo_client, mo):
    assert mo_client.get(reverse("settings")).status_code == 403
    response = mo_client.post(reverse("settings"), form_data(signin_user_threshold="1000"))
    assert response.status_code == 403
    assert not SiteSetting.objects.exists()
    [denied] = change_events("denied")
    assert denied.actor_id == mo.pk and denied.details["keys"] == sorted(catalog.SETTINGS)
    assert not AuditEvent.objects.filter(action__startswith="http.").exists()  # recorded once, by the service
    assert mo_client.post(reverse("settings_reset"), {"key": "signin_user_threshold"}).status_code == 403
    assert len(change_events("denied")) == 2


@pytest.mark.parametrize("who", ["operator", "disabled administrator"])
def test_the_service_refuses_anyone_but_an_active_global_administrator(mo, who):
    user = mo if who == "operator" else User.objects.create_superuser("old", "", PASSWORD, is_active=False)
    with pytest.raises(PermissionDenied):
        services.update_settings(user, {"signin_user_threshold": 1})
    with pytest.raises(PermissionDenied):
        services.reset_setting(user, "signin_user_threshold")
    assert not SiteSetting.objects.exists()
    assert [e.outcome for e in AuditEvent.objects.filter(action="settings.change")] == ["denied", "denied"]


def test_the_menu_shows_settings_to_administrators_only(admin_client, mo_client):
    assert f'href="{reverse("settings")}"' in admin_client.get("/").content.decode()
    html = mo_client.get("/").content.decode()
    assert "Dashboard" in html and f'href="{reverse("settings")}"' not in html


# Reset

def test_reset_goes_back_to_the_environments_value_and_is_audited(admin_client, admin):
    save(admin_client, audit_retention_days="30")
    html = admin_client.get(reverse("settings")).content.decode()
    assert html.count("Reset to the environment's value") == 1
    assert 'id="reset-audit_retention_days"' in html and "The environment's value is 365 days" in html

    with override_settings(BERTH_AUDIT_RETENTION_DAYS=400):
        response = admin_client.post(reverse("settings_reset"), {"key": "audit_retention_days"})
        assert response.status_code == 302 and response["Location"] == reverse("settings")
        assert catalog.get("audit_retention_days") == 400
        assert ("Keep audit records for is back to the environment&#x27;s value: 400 days."
                in admin_client.get(reverse("settings")).content.decode())
    assert not SiteSetting.objects.exists()
    assert change_events()[-1].details == {"audit_retention_days": {"from": 30, "to": 400, "reset": True}}
    # Nothing to reset: nothing recorded; an unknown key is an error, not a crash.
    assert services.reset_setting(admin, "audit_retention_days") == {}
    assert len(change_events()) == 2
    response = admin_client.post(reverse("settings_reset"), {"key": "colour"}, follow=True)
    assert "is not a setting" in response.content.decode()
    assert admin_client.get(reverse("settings_reset")).status_code == 405


def test_retention_runs_with_the_pages_value(admin, local, tmp_path):
    old = [audit.record(user=admin, action="image.pull", environment=local) for _ in range(3)]
    services.update_settings(admin, {"audit_retention_days": 30})
    with override_settings(BERTH_AUDIT_ARCHIVE_DIR=tmp_path):
        assert len(retention.purge_older_than(now=timezone.now() + dt.timedelta(days=40))) == 1
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    services.update_settings(admin, {"audit_retention_days": 0})
    with override_settings(BERTH_AUDIT_ARCHIVE_DIR=tmp_path):
        assert retention.purge_older_than(now=timezone.now() + dt.timedelta(days=9999)) == []
