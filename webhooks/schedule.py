"""The webhook retry schedule (the Standard Webhooks / Svix example schedule).

``RETRY_DELAYS_S[n]`` is the wait before attempt ``n + 1``, counted from the previous attempt:
immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. Eight attempts spread over 99,305 s
(about 27.6 hours) before jitter. Long waits belong in SQL (``next_attempt_at``) and a sweeper,
not in Celery countdowns.
"""
from __future__ import annotations

import random

RETRY_DELAYS_S: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS_S)
JITTER = 0.2                       # each delay is scaled by a uniform factor in [0.8, 1.2]


def next_delay(attempt: int, rng: random.Random = random) -> float | None:  # type: ignore[assignment]
    """Seconds to wait before ``attempt`` (1-based; attempt 1 is immediate) after the previous
    one failed, with +-20% jitter so that many failing deliveries do not retry in lockstep.
    None once all ``MAX_ATTEMPTS`` are used up."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError("attempt must be an integer >= 1")
    if attempt > MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS_S[attempt - 1]
    return max(0.0, base * rng.uniform(1 - JITTER, 1 + JITTER))
