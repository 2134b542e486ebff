"""Login rate limiting of the rater app: failed logins per account name and per client address.

Sliding windows: a failure counts for `window_s` seconds. An attempt is admitted only while both
its name and its address have fewer than their limits of failures in the window; otherwise it is
refused (429) without checking the password, with the seconds until the oldest counting failure
expires. Unknown names are counted exactly like real ones, so neither a lockout nor its absence
tells which accounts exist.

An admitted attempt counts as a failure from the moment it is admitted (so concurrent guesses
cannot slip past the limit together) until `succeeded` withdraws it; a success also clears the
name's earlier failures. The client address is the TCP peer (behind a reverse proxy that is the
proxy: forwarded headers are not trusted, they are set by the client).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from evaluation.human_eval.config import RaterAppConfig


class LoginThrottle:
    """Thread-safe failure counts; memory is bounded by `max_keys` (least recently failed go first)."""

    def __init__(
        self,
        window_s: float,
        failures_per_name: int,
        failures_per_address: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if window_s <= 0 or failures_per_name < 1 or failures_per_address < 1:
            raise ValueError("login throttle: window and limits must be positive")
        self.window_s = window_s
        self.limits = {"name": failures_per_name, "address": failures_per_address}
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: RaterAppConfig) -> LoginThrottle:
        return cls(config.login_window_s, config.login_failures_per_name, config.login_failures_per_address)

    def admit(self, name: str, address: str) -> int:
        """0 when the attempt may check its password (it now counts as a failure), else the whole
        seconds to wait (≥ 1) before the next attempt can be admitted."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            keys = (("name", name), ("address", address))
            for key in keys:
                stamps = self._recent(key, now)
                limit = self.limits[key[0]]
                if len(stamps) >= limit:
                    wait = max(wait, stamps[len(stamps) - limit] + self.window_s - now)
            if wait > 0:
                return max(1, math.ceil(wait))
            for key in keys:
                self._record(key, now)
            return 0

    def succeeded(self, name: str, address: str) -> None:
        """Withdraw the admitted attempt: the name starts afresh, the address loses one count."""
        with self._lock:
            self._failures.pop(("name", name), None)
            stamps = self._failures.get(("address", address))
            if stamps:
                stamps.pop()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        stamps = self._failures.get(key, deque())
        while stamps and stamps[0] <= now - self.window_s:
            stamps.popleft()
        if not stamps:
            self._failures.pop(key, None)
        return stamps

    def _record(self, key: tuple[str, str], now: float) -> None:
        stamps = self._failures.setdefault(key, deque())
        stamps.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)
