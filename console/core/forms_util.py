"""Small helpers shared by the console's forms."""

from django import forms


def parse_key_values(text: str, what: str = "label") -> dict[str, str]:
    """``key=value`` lines (blank lines ignored) as a dict; a line without a key is an error."""
    pairs = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        key, _, value = line.partition("=")
        if not key.strip():
            raise forms.ValidationError(f"{line!r}: write each {what} as key=value.")
        pairs[key.strip()] = value.strip()
    return pairs
