"""Response headers for a strict Content-Security-Policy, and no caching of signed-in pages.

Scripts and styles come from the console itself (``/static/``) and nowhere else: no inline
script, handler or style attribute runs, so markup that slipped into a page cannot act.
Each response has a fresh nonce (``request.csp_nonce``) that only ``<style>`` elements
carry: xterm.js writes its own, and static/js/csp-styles.js gives them the nonce. Sockets
are allowed to the console's own host (``connect-src``: ws/wss of the Host asked for).
Pages for a signed-in user are not stored by the browser or a proxy (``no-store``): the
back button after signing out, or a shared machine, shows nothing of them.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import DisallowedHost

# Data URIs for images: Pico's CSS draws its icons (select arrows, checkboxes) with them.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
          "font-src 'self'; connect-src 'self'{sockets}; object-src 'none'; frame-ancestors 'none'; "
          "base-uri 'self'; form-action 'self'")


def policy_for(request, nonce: str) -> str:
    try:
        host = request.get_host()
    except DisallowedHost:  # the request is refused anyway: allow no socket
        host = ""
    return POLICY.format(nonce=nonce, sockets=f" ws://{host} wss://{host}" if host else "")


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy_for(request, nonce)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response["Cache-Control"] = "no-store"
        return response
