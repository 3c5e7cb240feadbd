"""When the next request may start: a provider's rate limit, known, announced or learned.

Hand-written because the usual libraries pace at a fixed rate (aiolimiter) while this one
changes its rate as it learns it, and also holds the shared pauses a server asks for.
"""

from __future__ import annotations

import asyncio
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
# The shortest span an admitted rate is measured over (right after the first answers).
MIN_RATE_WINDOW_SECONDS = 0.1
# Learned pacing sends this much more than was admitted: enough to use the whole limit and to
# notice when it grows, few enough refusals (a fifth of the starts).
HEADROOM = 1.25
# Each admitted request raises the learned rate by this many requests/s: unthrottled, the rate
# doubles every 0.25 s (d rate/dt = GROWTH × rate); each 429 caps it again at HEADROOM × admitted.
GROWTH_PER_SUCCESS = 2.8
# Requests per second learned pacing never goes below.
MIN_LEARNED_RATE = 1.0
# A start released late (timer granularity) lets the next ones catch up this much, no more.
CATCH_UP_SECONDS = 0.01
# The longest the dispatcher sleeps before looking at the rate again.
DISPATCH_NAP_SECONDS = 0.05
# Weight of a new observation in the average of header-announced rates.
HEADER_SMOOTHING = 0.2
# Announced limits pace requests once no more than this share of the limit remains.
LOW_REMAINING_FRACTION = 0.1

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class RateGovernor:
    """Schedules request starts: one every 1/rate seconds (no bursts), and none during a shared pause.

    The rate is the tightest of: `requests_per_second` the user configured, the refill rate the
    server announces in `x-ratelimit-*` headers, and, once throttling has been sustained, a
    learned rate: each 429 caps it at HEADROOM times the rate the server was seen to admit, each
    admitted request raises it a little (so it follows a limit that grows, and stops mattering
    when the throttling ends). `tokens_per_second` paces by estimated tokens too.
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
        self._last_start = float("-inf")
        self._last_tokens_start = float("-inf")
        self._last_tokens = 0
        self._paused_until = 0.0
        self._recent: deque[bool] = deque()
        self._recent_throttled = 0
        self._successes: deque[float] = deque()
        self._first_outcome = 0.0
        self._waiters: deque[tuple[asyncio.Future[None], int]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None

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

    async def admit(self, tokens: int = 0) -> None:
        """Return when a request of about `tokens` tokens may start.

        Waiting requests queue in order and one dispatcher releases them at the current rate,
        so a rate learned while they wait applies to them at once.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._waiters and self._earliest(now, tokens) <= now:
            self._take(now, tokens)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append((waiter, tokens))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch())
        await waiter

    async def _dispatch(self) -> None:
        """Release the queued requests one by one as the schedule allows."""
        loop = asyncio.get_running_loop()
        while self._waiters:
            waiter, tokens = self._waiters[0]
            if waiter.done():  # cancelled while queued
                self._waiters.popleft()
                continue
            now = loop.time()
            start = self._earliest(now, tokens)
            if start > now:
                # in short naps: a rate learned meanwhile applies at once
                await asyncio.sleep(min(start - now, DISPATCH_NAP_SECONDS))
                continue
            self._waiters.popleft()
            self._take(now, tokens)
            waiter.set_result(None)

    def _earliest(self, now: float, tokens: int) -> float:
        """When the schedule lets the next request start (at the current rate, not the one booked)."""
        start = max(now, self._paused_until)
        rate = self.rate
        if rate is not None:
            start = max(start, self._last_start + 1.0 / rate)
        if self.tokens_per_second and tokens:
            start = max(start, self._last_tokens_start + self._last_tokens / self.tokens_per_second)
        return start

    def _take(self, now: float, tokens: int) -> None:
        """Book a start now; one released late lets the next ones catch up a little."""
        rate = self.rate
        if rate is not None:
            self._last_start = max(self._last_start + 1.0 / rate, now - CATCH_UP_SECONDS)
        if self.tokens_per_second and tokens:
            due = self._last_tokens_start + self._last_tokens / self.tokens_per_second
            self._last_tokens_start = max(due, now - CATCH_UP_SECONDS)
            self._last_tokens = tokens

    def on_success(self, now: float) -> None:
        """Count an answer the server admitted."""
        self._successes.append(now)
        self._remember(False, now)

    def on_throttled(self, now: float, retry_after: float | None) -> None:
        """Count a 429; under sustained throttling its Retry-After holds every request."""
        self._remember(True, now, retry_after)
        if retry_after and self.sustained and now + retry_after > self._paused_until:
            self._paused_until = now + retry_after
            self.pauses += 1

    def on_rate_headers(self, headers: Mapping[str, str]) -> None:
        """Pace to the refill rate OpenAI-style `x-ratelimit-*-requests` headers announce, near the limit.

        With `remaining` of `limit` requests left and `reset` seconds until the bucket is full
        again, it refills at (limit - remaining) / reset requests per second.
        """
        try:
            limit = float(headers["x-ratelimit-limit-requests"])
            remaining = float(headers["x-ratelimit-remaining-requests"])
            reset = duration_seconds(headers["x-ratelimit-reset-requests"])
        except (KeyError, ValueError):
            return
        if remaining > LOW_REMAINING_FRACTION * limit or reset <= 0:
            # Far from the limit: no pace needed, and a coarse reset time would misjudge the rate.
            self.announced_rate = None
            return
        observed = (limit - remaining) / reset
        previous = self.announced_rate
        self.announced_rate = (
            observed if previous is None else previous + HEADER_SMOOTHING * (observed - previous)
        )

    def _remember(self, throttled: bool, now: float, retry_after: float | None = None) -> None:
        """Slide the outcome window and, once throttling is sustained, re-learn the rate."""
        if not self._recent:
            self._first_outcome = now
        self._recent.append(throttled)
        self._recent_throttled += throttled
        if len(self._recent) > RECENT_OUTCOMES:
            self._recent_throttled -= self._recent.popleft()
        while self._successes and self._successes[0] < now - RATE_WINDOW_SECONDS:
            self._successes.popleft()
        if not self.learn:
            return
        if self.learned_rate is None:
            # Learning starts with sustained throttling: from the answers admitted so far, or
            # before any, from the wait the server named (one request per Retry-After).
            if self.sustained and self._successes:
                self.learned_rate = max(MIN_LEARNED_RATE, HEADROOM * self._admitted_rate(now))
            elif self.sustained and retry_after:
                self.learned_rate = max(MIN_LEARNED_RATE, 1.0 / retry_after)
        elif throttled:
            self.learned_rate = max(
                MIN_LEARNED_RATE, min(self.learned_rate, HEADROOM * self._admitted_rate(now))
            )
        else:
            self.learned_rate += GROWTH_PER_SUCCESS

    def _admitted_rate(self, now: float) -> float:
        """Admitted answers per second over the window (or over the time since the first answer)."""
        seen_for = min(RATE_WINDOW_SECONDS, now - self._first_outcome)
        return len(self._successes) / max(seen_for, MIN_RATE_WINDOW_SECONDS)


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
