"""Failures that end a run: the provider refuses it, cannot be reached, or a stage delivered too little.

Each message is one line meant for the user (what happened, where, what to fix), already
redacted: it never carries an API key. The command line shows them without a traceback.
"""

from __future__ import annotations

import math

from judgeforge.errors import UserError


class ProviderError(UserError, RuntimeError):
    """The provider cannot serve this run at all; retrying or carrying on would only waste it."""


class ProviderRejected(ProviderError):
    """The provider refused the run itself (key, permission, unknown model, no quota): not retried."""


class ProviderUnreachable(ProviderError):
    """No connection to the endpoint succeeded for `max_connection_failures` attempts in a row."""


class BatchFailed(ProviderError):
    """A provider batch could not be submitted, or ended failed, expired or cancelled."""


class DeliveryShortfall(UserError, RuntimeError):
    """A stage delivered less than asked beyond its tolerance; what it did make is kept (cache, report)."""


def shortfall(requested: int, delivered: int, max_fraction: float) -> dict[str, object]:
    """Return how far a stage fell short of what was asked, and whether that is within tolerance."""
    allowed = math.floor(requested * max_fraction + 1e-9)
    short_by = max(0, requested - delivered)
    return {
        "short_by": short_by,
        "max_shortfall_fraction": max_fraction,
        "allowed": allowed,
        "within_tolerance": short_by <= allowed,
    }


# What to fix when a provider refuses a run with this HTTP status.
_REFUSALS = {
    401: "the API key was refused: set a valid key (environment variable or credentials)",
    403: "permission denied: the key lacks access to this model or endpoint",
    404: "unknown model or wrong URL: check the model name and base_url",
}
NO_QUOTA = "the account has no quota or credit left: add credit or use another key"


def run_refusal(
    status: int, detail: str, where: str, *, no_quota: bool = False, bad_key: bool = False
) -> ProviderRejected | None:
    """The error ending the run when a status means every request would fail alike, else None.

    `bad_key` marks a refused key answered with another status (Gemini says 400 API_KEY_INVALID).
    """
    fix = NO_QUOTA if no_quota else _REFUSALS.get(401 if bad_key else status)
    if fix is None:
        return None
    return ProviderRejected(f"{where} answered HTTP {status}: {detail}; {fix}")
