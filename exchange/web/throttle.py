"""Login throttling: growing waits per (account, address) pair, and a per-address limit on failures.

Every count is one atomic step (Redis INCR / SET NX, or the in-memory store's lock), taken *before* the password
is checked: eighty concurrent guesses for one pair reserve eighty numbers, and only the first few are checked.

- A pair (account, address) has `free - 1` attempts; from the `free`-th on, one attempt per wait is checked,
  the wait doubling with each attempt (capped). A refused attempt checks no
  password. The account's owner at another address is a different pair: an attacker cannot lock them out.
- An address may fail `per_minute` times a minute whatever the accounts (password spraying); an attempt in
  flight counts until it succeeds, so a police station's fifty officers logging in never reach the limit.
- A success clears its pair; an admin can clear every pair of an account (`unlock`).
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar
from litestar.stores.base import StorageObject
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore

PAIR_WINDOW_SECONDS = 24 * 3600
ADDRESS_WINDOW_SECONDS = 60


class MemoryCounters(MemoryStore):
    """The in-memory store with atomic counters (one process: the store's lock makes each step atomic)."""

    async def incr(self, key: str, expires_in: int) -> int:
        async with self._lock:
            obj = self._store.get(key)
            if obj is None or obj.expired:
                obj = StorageObject.new(data=b"1", expires_in=expires_in)
            else:
                obj = StorageObject(expires_at=obj.expires_at, data=str(int(obj.data) + 1).encode())
            self._store[key] = obj
            return int(obj.data)

    async def decr(self, key: str) -> None:
        async with self._lock:
            obj = self._store.get(key)
            if obj is not None and not obj.expired:
                self._store[key] = StorageObject(expires_at=obj.expires_at, data=str(int(obj.data) - 1).encode())

    async def set_nx(self, key: str, expires_in: int) -> bool:
        async with self._lock:
            obj = self._store.get(key)
            if obj is not None and not obj.expired:
                return False
            self._store[key] = StorageObject.new(data=b"1", expires_in=expires_in)
            return True

    async def delete_prefix(self, prefix: str) -> None:
        async with self._lock:
            for key in [k for k in self._store if k.startswith(prefix)]:
                del self._store[key]


class RedisCounters(RedisStore):
    """Redis INCR / SET NX: atomic across every process of the deployment."""

    async def incr(self, key: str, expires_in: int) -> int:
        name = self._make_key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            count, ttl = await pipe.incr(name).ttl(name).execute()
        if ttl < 0:
            await self._redis.expire(name, expires_in)
        return int(count)

    async def decr(self, key: str) -> None:
        await self._redis.decr(self._make_key(key))

    async def set_nx(self, key: str, expires_in: int) -> bool:
        return bool(await self._redis.set(self._make_key(key), b"1", ex=expires_in, nx=True))

    async def delete_prefix(self, prefix: str) -> None:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self._make_key(prefix)) + "*"
        async for key in self._redis.scan_iter(match=pattern):
            await self._redis.delete(key)


Counters = MemoryCounters | RedisCounters


def _account(username: str) -> str:
    return username.strip().lower()


@dataclass(frozen=True)
class Attempt:
    username: str
    address: str

    @property
    def pair(self) -> str:
        return f"pair:{_account(self.username)}\x1f{self.address}"

    @property
    def wait(self) -> str:
        return f"wait:{_account(self.username)}\x1f{self.address}"

    @property
    def addr(self) -> str:
        return f"addr:{self.address}"


@dataclass(frozen=True)
class LoginThrottle:
    store: Counters
    # Failures of one pair before waits begin; the longest wait; failures an address may make per minute.
    free: int = 5
    cap_seconds: int = 15 * 60
    per_minute: int = 10

    def delay(self, attempt_number: int) -> int:
        """2 s after the `free`-th attempt, doubling with each attempt after it, capped."""
        return min(2 ** max(attempt_number - self.free + 1, 1), self.cap_seconds)

    async def admit(self, username: str, address: str) -> Attempt | None:
        """An attempt whose password may be checked, or None: too many failures, wait."""
        attempt = Attempt(username, address)
        if await self.store.incr(attempt.addr, ADDRESS_WINDOW_SECONDS) > self.per_minute:
            await self.store.decr(attempt.addr)
            return None
        number = await self.store.incr(attempt.pair, PAIR_WINDOW_SECONDS)
        # From the `free`-th attempt on, an attempt is checked only if it claims the pair's wait slot (SET NX):
        # one claim per wait, whatever the concurrency, and whatever it gives, the next attempt waits.
        if number >= self.free and not await self.store.set_nx(attempt.wait, self.delay(number)):
            await self.store.decr(attempt.addr)
            return None
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        await self.store.decr(attempt.addr)  # successes do not count toward the address's limit
        await self.store.delete(attempt.pair)
        await self.store.delete(attempt.wait)

    async def unlock(self, username: str) -> None:
        """An admin's action: every address may try this account again at once."""
        for kind in ("pair", "wait"):
            await self.store.delete_prefix(f"{kind}:{_account(username)}\x1f")


def for_app(app: Litestar) -> LoginThrottle:
    settings = app.state.settings
    return LoginThrottle(
        app.stores.get("login_failures"),  # type: ignore[arg-type]
        free=settings.login_failures_free,
        cap_seconds=settings.login_delay_cap_seconds,
        per_minute=settings.login_attempts_per_minute,
    )
