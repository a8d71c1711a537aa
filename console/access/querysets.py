"""``Model.objects.restrict(user, permission, environment)``: the one way to ask for "the rows
this user may see (or act on with ``permission``) here", for pages, live views, sockets,
services and tasks alike (NetBox's ``RestrictedQuerySet``). The rules are in
``console.access.permissions.restrict``."""

from __future__ import annotations

from django.db import models


class RestrictedQuerySet(models.QuerySet):
    def restrict(self, user, permission: str, environment):
        from console.access.permissions import restrict

        return restrict(self, user, permission, environment)
