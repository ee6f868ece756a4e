"""Pure decisions of the claim loops: when to retry, when to give up, what counts as late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base``, ``2*base``, ``4*base``... capped, then dead after
    ``max_attempts`` failed attempts."""

    max_attempts: int
    base_s: float
    max_s: float

    def delay_s(self, attempts: int) -> float:
        """Wait before the next attempt, after ``attempts`` failed ones (1 = the first)."""
        return float(min(self.max_s, self.base_s * 2 ** max(0, attempts - 1)))

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again, or None: give up (dead letter)."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delay_s(attempts))


def lag_s(due_at: datetime, fired_at: datetime) -> float:
    """How long after its due time a timer fired (never negative)."""
    return max(0.0, (fired_at - due_at).total_seconds())


def is_late(due_at: datetime, fired_at: datetime, late_after_s: float) -> bool:
    return lag_s(due_at, fired_at) > late_after_s


def short_error(exc: BaseException, limit: int = 2000) -> str:
    """The error kept on a failed row: its type and message, cut to the column size."""
    text = f"{exc.__class__.__name__}: {exc}"
    return text[:limit]
