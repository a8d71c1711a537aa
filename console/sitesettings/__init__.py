"""Console-wide settings an administrator changes on the Settings page.

- ``catalog``: which settings are editable, and ``get(key)``: the value in force (the page's
  if an administrator set one, else the Django setting, which comes from the environment).
- ``services``: ``update_settings`` and ``reset_setting``, the only way to change them.

Nothing here imports models at module level: the audit package and the sign-in protections
import ``catalog`` early.
"""
