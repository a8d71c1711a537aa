"""Docker's ``label`` filter, shared by containers, networks and volumes."""

from __future__ import annotations


def labels_match(labels: dict, wanted) -> bool:
    """Each of ``wanted`` (``key`` or ``key=value``) names a label ``labels`` has, with that
    value when one is given."""
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True
