"""Polling until something reaches a state, against a deadline, with injected time so tests never sleep.

Every wait of this kind -- the Cilium agents importing new policies (``realization``), the
preflight objects becoming ready and the agents rolling to a new version (the pre-upgrade check)
-- reads some state, tests it, and retries until a deadline. A read that fails with a
``ClusterError`` (an agent that cannot be exec'd yet, an API server restarting) is retried like an
unfinished state, and the outcome keeps the last value and the last error, so a timeout can say
what the cluster looked like and why the last read failed. tenacity does the retrying; ``clock``
and ``sleep`` are injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, retry_if_result, wait_fixed

from flowcheck.errors import ClusterError

T = TypeVar("T")


@dataclass
class WaitOutcome(Generic[T]):
    """How a wait ended: ``done``, the last value read, and the last error (if the last read failed)."""

    done: bool
    last: T | None
    error: BaseException | None


def wait_until(read: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float, interval_s: float,
               clock: Callable[[], float], sleep: Callable[[float], None]) -> WaitOutcome[T]:
    """Poll ``read`` every ``interval_s`` until ``done`` or the deadline; a ``ClusterError`` is retried too."""
    deadline = clock() + timeout_s
    seen: dict[str, T] = {}

    def attempt() -> T:
        value = read()
        seen["last"] = value
        return value

    def past_deadline(_state: RetryCallState) -> bool:
        return clock() >= deadline

    retrying = Retrying(stop=past_deadline, wait=wait_fixed(interval_s), sleep=sleep,
                        retry=retry_if_exception_type(ClusterError) | retry_if_result(lambda value: not done(value)))
    try:
        value = retrying(attempt)
    except RetryError as exc:
        error = exc.last_attempt.exception() if exc.last_attempt.failed else None
        return WaitOutcome(False, seen.get("last"), error)
    return WaitOutcome(True, value, None)
