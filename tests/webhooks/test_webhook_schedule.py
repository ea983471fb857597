"""The retry schedule: 8 attempts, +-20% jitter, attempt 1 immediate, then exhausted."""
import random

import pytest

from webhooks.schedule import JITTER, MAX_ATTEMPTS, RETRY_DELAYS_S, next_delay


class EdgeRng:
    """Always picks one end of the jitter interval."""

    def __init__(self, end: int):
        self.end = end

    def uniform(self, low, high):
        return (low, high)[self.end]


def test_the_schedule_is_the_documented_one():
    assert RETRY_DELAYS_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert MAX_ATTEMPTS == 8
    assert sum(RETRY_DELAYS_S) == 99_305          # about 27.6 hours before jitter


def test_first_attempt_is_immediate():
    assert next_delay(1) == 0
    assert next_delay(1, EdgeRng(1)) == 0


@pytest.mark.parametrize("attempt", range(2, MAX_ATTEMPTS + 1))
def test_delays_stay_within_the_jitter_bounds(attempt):
    base = RETRY_DELAYS_S[attempt - 1]
    rng = random.Random(attempt)
    samples = [next_delay(attempt, rng) for _ in range(2000)]
    assert all(base * (1 - JITTER) <= s <= base * (1 + JITTER) for s in samples)
    assert min(samples) < base < max(samples)     # jitter goes both ways
    assert len(set(samples)) > 1900
    assert next_delay(attempt, EdgeRng(0)) == pytest.approx(base * 0.8)
    assert next_delay(attempt, EdgeRng(1)) == pytest.approx(base * 1.2)


def test_the_default_rng_is_the_random_module():
    assert 4.0 <= next_delay(2) <= 6.0


@pytest.mark.parametrize("attempt", [MAX_ATTEMPTS + 1, MAX_ATTEMPTS + 2, 1000])
def test_exhausted_after_eight_attempts(attempt):
    assert next_delay(attempt) is None


@pytest.mark.parametrize("attempt", [0, -1, True, 1.0, "2"])
def test_bad_attempt_numbers_are_refused(attempt):
    with pytest.raises(ValueError):
        next_delay(attempt)
