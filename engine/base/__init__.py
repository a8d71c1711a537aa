"""Standard-library helpers the whole engine shares (no engine imports here)."""
