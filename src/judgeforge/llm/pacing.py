"""When the next request may start: a provider's rate limit, known, announced or learned.

Hand-written because the usual libraries pace at a fixed rate (aiolimiter) while this one
changes its rate as it learns it, and also holds the shared pauses a server asks for.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping

# Outcomes the throttling fraction is measured over.
RECENT_OUTCOMES = 32
# At least this share of the recent answers being 429 is sustained throttling: a real limit,
# so the rate is learned and a Retry-After holds every request. Fewer are scattered 429s: only
# the throttled request waits (a gateway that refuses 20 % at random is not a rate limit).
SUSTAINED_FRACTION = 0.5
# Seconds of successful answers the admitted rate is measured over.
RATE_WINDOW_SECONDS = 1.0
# Learned pacing sends this much more than was admitted: enough to use the whole limit and to
# notice when it grows (the rate can rise 25 % per window), few enough refusals (a fifth).
HEADROOM = 1.25
# Requests per second learned pacing never goes below.
MIN_LEARNED_RATE = 1.0
# Weight of a new observation in the average of header-announced rates.
HEADER_SMOOTHING = 0.2

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class RateGovernor:
    """Schedules request starts: a virtual token bucket (GCRA) at the current rate, plus shared pauses.

    The rate is the tightest of: `requests_per_second` the user configured, the refill rate the
    server announces in `x-ratelimit-*` headers, and, under sustained throttling, the rate the
    server was seen to admit (times HEADROOM). `tokens_per_second` paces by estimated tokens too.
    With none of them the governor waits only for pauses and costs one comparison per request.
    """

    def __init__(
        self,
        requests_per_second: float | None = None,
        tokens_per_second: float | None = None,
        learn: bool = True,
    ) -> None:
        self.configured_rate = requests_per_second
        self.tokens_per_second = tokens_per_second
        self.learn = learn
        self.announced_rate: float | None = None
        self.learned_rate: float | None = None
        self.pauses = 0
        self._next_request = 0.0
        self._next_tokens = 0.0
        self._paused_until = 0.0
        self._recent: deque[bool] = deque()
        self._recent_throttled = 0
        self._successes: deque[float] = deque()

    @property
    def rate(self) -> float | None:
        """Requests per second starts are paced at (None: not paced)."""
        rates = [r for r in (self.configured_rate, self.announced_rate, self.learned_rate) if r]
        return min(rates) if rates else None

    @property
    def sustained(self) -> bool:
        """Whether most recent answers were 429s (a real limit, not scattered refusals)."""
        filled = len(self._recent) == RECENT_OUTCOMES
        return filled and self._recent_throttled >= SUSTAINED_FRACTION * RECENT_OUTCOMES

    def reserve(self, now: float, tokens: int = 0) -> float:
        """Take the next start in the schedule; returns when it is (>= now)."""
        start = max(now, self._paused_until)
        rate = self.rate
        if rate is not None:
            start = max(start, self._next_request)
            self._next_request = start + 1.0 / rate
        if self.tokens_per_second and tokens:
            start = max(start, self._next_tokens)
            self._next_tokens = start + tokens / self.tokens_per_second
        return start

    def paused_until(self) -> float:
        """End of the shared pause (in the past when there is none)."""
        return self._paused_until

    def on_success(self, now: float) -> None:
        """Count an answer the server admitted."""
        self._successes.append(now)
        self._remember(False, now)

    def on_throttled(self, now: float, retry_after: float | None) -> None:
        """Count a 429; under sustained throttling its Retry-After holds every request."""
        self._remember(True, now)
        if retry_after and self.sustained and now + retry_after > self._paused_until:
            self._paused_until = now + retry_after
            self.pauses += 1

    def on_rate_headers(self, headers: Mapping[str, str]) -> None:
        """Learn the refill rate from OpenAI-style `x-ratelimit-{limit,remaining,reset}-requests`."""
        try:
            limit = float(headers["x-ratelimit-limit-requests"])
            remaining = float(headers["x-ratelimit-remaining-requests"])
            reset = duration_seconds(headers["x-ratelimit-reset-requests"])
        except (KeyError, ValueError):
            return
        if limit <= remaining or reset <= 0:
            return  # a full bucket says nothing about how fast it refills
        observed = (limit - remaining) / reset
        previous = self.announced_rate
        self.announced_rate = (
            observed if previous is None else previous + HEADER_SMOOTHING * (observed - previous)
        )

    def _remember(self, throttled: bool, now: float) -> None:
        """Slide the outcome window and, once throttling is sustained, re-learn the rate."""
        self._recent.append(throttled)
        self._recent_throttled += throttled
        if len(self._recent) > RECENT_OUTCOMES:
            self._recent_throttled -= self._recent.popleft()
        while self._successes and self._successes[0] < now - RATE_WINDOW_SECONDS:
            self._successes.popleft()
        if self.learn and (self.learned_rate is not None or self.sustained):
            admitted = len(self._successes) / RATE_WINDOW_SECONDS
            self.learned_rate = max(MIN_LEARNED_RATE, HEADROOM * admitted)


def duration_seconds(text: str) -> float:
    """Seconds in a duration written `1.5`, `20ms`, `1s` or `6m0s` (OpenAI's reset headers)."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
