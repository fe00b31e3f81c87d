"""Failed-login rate limiting per username and client address (the ``limits`` library).

At most ``login_max_failures`` passwords are checked for one username from one address within
``login_window_s`` seconds (a moving window) without a success; further attempts for that pair
are refused with 429 before any password is checked, until the oldest failure leaves the window.
A success clears the pair's count.

Each attempt is counted *before* its password is checked, in one atomic step (the moving
window's ``hit`` takes a lock in memory and is one Lua script in Redis): counting after the
check let parallel attempts all pass the test before any of them was counted, so 12 parallel
guesses all got through a limit of 5.

The address is the peer's; ``assay serve`` replaces it by X-Forwarded-For only when the peer is
one of ``trusted_proxies`` (``app.cli``), so a client cannot pick its own address.

Storage is ``login_limit_storage``: ``memory://`` (the default) counts **per web process**, so
N processes allow up to N times the limit; a ``redis://`` URL shares the count between them.
"""

from __future__ import annotations

import math
import time

from fastapi import HTTPException, Request, status
from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.core.config import Settings


class TooManyLogins(Exception):
    def __init__(self, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(
            f"Too many failed logins for this user from your address: "
            f"try again in {retry_after_s} seconds."
        )


class LoginLimiter:
    def __init__(self, settings: Settings):
        self.limit = RateLimitItemPerSecond(settings.login_max_failures, settings.login_window_s)
        self.window = MovingWindowRateLimiter(storage_from_string(settings.login_limit_storage))

    @staticmethod
    def _key(username: str, address: str) -> tuple[str, str, str]:
        return ("login", username.strip().lower(), address)

    def attempt(self, username: str, address: str) -> None:
        """Count an attempt for this pair, or raise TooManyLogins when it has none left.

        Call before checking the password; a failed attempt then simply stays counted."""
        key = self._key(username, address)
        if not self.window.hit(self.limit, *key):
            reset = self.window.get_window_stats(self.limit, *key).reset_time
            raise TooManyLogins(max(1, math.ceil(reset - time.time())))

    def succeeded(self, username: str, address: str) -> None:
        """The password was right: the pair starts afresh."""
        self.window.clear(self.limit, *self._key(username, address))


def client_address(request: Request) -> str:
    """The peer address (the client's when a trusted proxy forwarded the request)."""
    return request.client.host if request.client else "unknown"


def login_limiter(request: Request) -> LoginLimiter:
    return request.app.state.login_limiter


def too_many(err: TooManyLogins) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        str(err),
        headers={"Retry-After": str(err.retry_after_s)},
    )
