"""Keeping API keys out of logs, exceptions, cache rows and saved prompts."""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "***"
# Shorter strings are too likely to occur by chance to be worth scrubbing.
_MIN_SECRET_LENGTH = 6


class Redactor:
    """Replaces every known secret in a text by `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        unique = {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is scrubbed whole.
        self._secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` with the secrets scrubbed."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"
