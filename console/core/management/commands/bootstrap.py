"""Make sure an administrator exists; on first start, print its password once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first administrator if there is none (password from BERTH_ADMIN_PASSWORD or generated)."

    def handle(self, *args, **options):
        User = get_user_model()
        existing = User.objects.filter(is_superuser=True).order_by("pk").first()
        if existing:
            self.stdout.write(f"Administrator: {existing.get_username()} (password unchanged)")
            return
        username = os.environ.get("BERTH_ADMIN_USERNAME", "admin")
        password = os.environ.get("BERTH_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                self.style.SUCCESS(f"Administrator created: {username} / {password}")
                + "\nThis password is shown once. Change it after signing in "
                "(or later: manage.py changepassword " + username + ")."
            )
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Administrator created: {username} (password from BERTH_ADMIN_PASSWORD)"))
