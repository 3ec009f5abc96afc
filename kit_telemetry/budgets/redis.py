"""``RedisLedger``: budget counters in Redis, shared by a fleet of machines.

Each operation is one Lua script, which Redis runs atomically: check-and-reserve across
several counters, commit, release, usage and the alert record each take one round trip.

Keys, all under ``prefix`` (default ``kit:budget``): for a counter, ``{prefix}:c:{key}``
is a hash holding its description, ``spent`` and ``reserved``; ``...:r`` (sorted set of
reservation ids by expiry) and ``...:ra`` (their amounts), ``...:b`` (rolling buckets),
``...:i`` (idempotency keys by expiry) and ``...:a`` (alerts sent) sit beside it.
``{prefix}:index`` lists counters by how long they stay active, for ``live_counters``.
Every key gets a TTL of the counter's active time plus an hour, so ended windows clean
themselves up. Scripts touch keys they derive from the counter key, so this runs on one
Redis server (or a Sentinel-managed primary), not on Redis Cluster.

Times come from the caller's clock (the enforcer's), so a fleet should keep NTP time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis as redis_lib

from .ledger import (
    IDEMPOTENCY_TTL_S,
    Counter,
    CounterStatus,
    LedgerError,
    ReserveOutcome,
    check_amounts,
)

__all__ = ["RedisLedger"]

_GRACE_S = 3600  # keys outlive their counter's active time, so late commits still land

# Shared Lua helpers. Numbers are written with %.17g so integers stay exact and times keep
# their sub-second part (Lua's own tostring keeps only 14 digits).
#
# Each counter's arguments are PER values from ARGV[o]: key, amount, active_until, limit,
# enforce ("1"/"0"), rolling_s, bucket_s, and meta (JSON: budget, unit, scope key, window
# start and end), which is stored only when the counter is new or its limit changed.
_PRELUDE = r"""
local NEVER = 1e300
local GRACE = 3600
local PER = 8
local SUFFIXES = {'', ':r', ':ra', ':b', ':i', ':a'}
local function num(x) return string.format('%.17g', x) end

-- A counter's figures, after dropping expired reservations and rolled-off buckets.
local function load(base, now)
  local v = redis.call('HMGET', base, 'spent', 'reserved', 'next_expiry', 'prune_at',
                       'rolling_s', 'bucket_s', 'limit', 'enforce', 'ttl_until')
  local c = {spent = tonumber(v[1]) or 0, reserved = tonumber(v[2]) or 0,
             next_expiry = tonumber(v[3]) or NEVER, prune_at = tonumber(v[4]) or NEVER,
             limit = v[7], enforce = v[8], ttl_until = tonumber(v[9]) or 0}
  if now >= c.next_expiry then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', base .. ':r', '-inf', now)) do
      c.reserved = c.reserved - (tonumber(redis.call('HGET', base .. ':ra', id)) or 0)
      redis.call('HDEL', base .. ':ra', id)
    end
    redis.call('ZREMRANGEBYSCORE', base .. ':r', '-inf', now)
    local first = redis.call('ZRANGE', base .. ':r', 0, 0, 'WITHSCORES')
    if first[2] then c.next_expiry = tonumber(first[2]) else c.next_expiry = NEVER end
    redis.call('HSET', base, 'reserved', num(c.reserved), 'next_expiry', num(c.next_expiry))
  end
  if now >= c.prune_at then
    local rolling_s = tonumber(v[5]) or 0
    local bucket_s = tonumber(v[6]) or 0
    local horizon = now - rolling_s - bucket_s
    local buckets = redis.call('HGETALL', base .. ':b')
    local oldest = NEVER
    for i = 1, #buckets, 2 do
      local start = tonumber(buckets[i])
      if start <= horizon then
        c.spent = c.spent - tonumber(buckets[i + 1])
        redis.call('HDEL', base .. ':b', buckets[i])
      elseif start < oldest then
        oldest = start
      end
    end
    if oldest < NEVER then c.prune_at = oldest + rolling_s + bucket_s else c.prune_at = NEVER end
    redis.call('HSET', base, 'spent', num(c.spent), 'prune_at', num(c.prune_at))
  end
  return c
end

-- After a write: the description when new or changed, and TTLs (extended at most once a
-- minute of clock time, so calendar counters set them once). Sub-keys written by this call
-- get the counter's TTL too, as they may be younger than the last extension.
local function touch(index, base, c, o, now, active_until, written)
  if c.limit ~= ARGV[o + 3] or c.enforce ~= ARGV[o + 4] then
    redis.call('HSET', base, 'limit', ARGV[o + 3], 'enforce', ARGV[o + 4],
               'rolling_s', ARGV[o + 5], 'bucket_s', ARGV[o + 6], 'meta', ARGV[o + 7])
  end
  local target = active_until + GRACE
  if target > c.ttl_until + 60 then
    local ttl = math.ceil(target - now)
    for _, suffix in ipairs(SUFFIXES) do redis.call('EXPIRE', base .. suffix, ttl) end
    redis.call('HSET', base, 'ttl_until', num(target))
    redis.call('ZADD', index, 'GT', active_until, ARGV[o])
  else
    local ttl = math.ceil(c.ttl_until - now)
    for _, suffix in ipairs(written) do redis.call('EXPIRE', base .. suffix, ttl) end
  end
end
"""

# KEYS: index, then one base per counter. ARGV: now, expires_at, reservation id, then PER
# values per counter.
_RESERVE = (
    _PRELUDE
    + r"""
local now = tonumber(ARGV[1])
local expires_at = tonumber(ARGV[2])
local rid = ARGV[3]
local n = #KEYS - 1
local out = {1, -1}
local loaded = {}
for i = 1, n do
  local o = 4 + (i - 1) * PER
  local c = load(KEYS[i + 1], now)
  loaded[i] = c
  out[#out + 1] = c.spent
  out[#out + 1] = c.reserved
  local amount = tonumber(ARGV[o + 1])
  local limit = tonumber(ARGV[o + 3])
  local used = c.spent + c.reserved
  if out[1] == 1 and ARGV[o + 4] == '1' and (used >= limit or used + amount > limit) then
    out[1] = 0
    out[2] = i - 1
  end
end
if out[1] == 1 then
  for i = 1, n do
    local base = KEYS[i + 1]
    local o = 4 + (i - 1) * PER
    local c = loaded[i]
    local previous = tonumber(redis.call('HGET', base .. ':ra', rid)) or 0
    redis.call('HSET', base .. ':ra', rid, ARGV[o + 1])
    redis.call('ZADD', base .. ':r', expires_at, rid)
    if expires_at < c.next_expiry then c.next_expiry = expires_at end
    redis.call('HSET', base, 'reserved', num(c.reserved - previous + tonumber(ARGV[o + 1])),
               'next_expiry', num(c.next_expiry))
    touch(KEYS[1], base, c, o, now, math.max(tonumber(ARGV[o + 2]), expires_at), {':r', ':ra'})
  end
end
return out
"""
)

# KEYS: index, then one base per counter. ARGV: now, reservation id ('' for none),
# idempotency key ('' for none), idempotency expiry, then PER values per counter.
_COMMIT = (
    _PRELUDE
    + r"""
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local idem = ARGV[3]
local idem_expiry = tonumber(ARGV[4])
local out = {}
for i = 1, #KEYS - 1 do
  local base = KEYS[i + 1]
  local o = 5 + (i - 1) * PER
  local c = load(base, now)
  local written = {}
  if rid ~= '' then
    local held = redis.call('HGET', base .. ':ra', rid)
    if held then
      c.reserved = c.reserved - tonumber(held)
      redis.call('HDEL', base .. ':ra', rid)
      redis.call('ZREM', base .. ':r', rid)
    end
  end
  local charge = tonumber(ARGV[o + 1])
  if idem ~= '' then
    local seen = redis.call('ZSCORE', base .. ':i', idem)
    if seen and tonumber(seen) > now then
      charge = 0
    else
      redis.call('ZREMRANGEBYSCORE', base .. ':i', '-inf', now)
      redis.call('ZADD', base .. ':i', idem_expiry, idem)
      written[#written + 1] = ':i'
    end
  end
  local rolling_s = tonumber(ARGV[o + 5])
  if charge > 0 and rolling_s > 0 then
    local bucket_s = tonumber(ARGV[o + 6])
    local start = math.floor(now / bucket_s) * bucket_s
    local field = string.format('%d', start)
    local current = tonumber(redis.call('HGET', base .. ':b', field)) or 0
    redis.call('HSET', base .. ':b', field, num(current + charge))
    if start + rolling_s + bucket_s < c.prune_at then
      redis.call('HSET', base, 'prune_at', num(start + rolling_s + bucket_s))
    end
    written[#written + 1] = ':b'
  end
  c.spent = c.spent + charge
  redis.call('HSET', base, 'spent', num(c.spent), 'reserved', num(c.reserved))
  touch(KEYS[1], base, c, o, now, tonumber(ARGV[o + 2]), written)
  out[#out + 1] = c.spent
  out[#out + 1] = c.reserved
end
return out
"""
)

# KEYS: counter bases. ARGV: reservation id.
_RELEASE = r"""
local rid = ARGV[1]
for i = 1, #KEYS do
  local base = KEYS[i]
  local held = redis.call('HGET', base .. ':ra', rid)
  if held then
    redis.call('HDEL', base .. ':ra', rid)
    redis.call('ZREM', base .. ':r', rid)
    local reserved = tonumber(redis.call('HGET', base, 'reserved')) or 0
    redis.call('HSET', base, 'reserved', string.format('%.17g', reserved - tonumber(held)))
  end
end
return 1
"""

# KEYS: counter bases. ARGV: now.
_USAGE = (
    _PRELUDE
    + r"""
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local spent, reserved = 0, 0
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local c = load(KEYS[i], now)
    spent, reserved = c.spent, c.reserved
  end
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
return out
"""
)

# KEYS: index. ARGV: now, the prefix of counter bases.
_LIVE = (
    _PRELUDE
    + r"""
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local base = ARGV[2] .. key
  if redis.call('EXISTS', base) == 1 then
    local c = load(base, now)
    local m = redis.call('HMGET', base, 'meta', 'limit', 'enforce', 'rolling_s', 'bucket_s')
    out[#out + 1] = {m[1], m[2], m[3], m[4], m[5], num(c.spent), num(c.reserved)}
  end
end
return out
"""
)

# KEYS: index, counter base. ARGV: now, alert field, alert expiry, then PER values.
_MARK_ALERT = (
    _PRELUDE
    + r"""
local now = tonumber(ARGV[1])
local base = KEYS[2]
local c = load(base, now)
local seen = redis.call('HGET', base .. ':a', ARGV[2])
local first = 0
if not seen or tonumber(seen) <= now then
  redis.call('HSET', base .. ':a', ARGV[2], ARGV[3])
  first = 1
end
touch(KEYS[1], base, c, 4, now, tonumber(ARGV[6]), {':a'})
return first
"""
)


_statics: dict[tuple[str, int, bool], tuple[Any, ...]] = {}


def _static(counter: Counter) -> tuple[Any, ...]:
    """A counter's unchanging arguments (limit, enforce, rolling, meta), built once."""
    cache_key = (counter.key, counter.limit, counter.enforce)
    found = _statics.get(cache_key)
    if found is None:
        if len(_statics) > 10_000:
            _statics.clear()
        meta = json.dumps(
            [
                counter.budget,
                counter.unit,
                counter.scope_key,
                counter.window_start,
                counter.window_end,
            ]
        )
        found = (
            counter.limit,
            "1" if counter.enforce else "0",
            counter.rolling_s,
            counter.bucket_s,
            meta,
        )
        _statics[cache_key] = found
    return found


class RedisLedger:
    """Counters in Redis: one budget shared by any number of processes and machines.

    Args:
        url: ``redis://HOST:PORT/DB`` (also ``rediss://`` and ``unix://``).
        prefix: namespace of every key this ledger writes.
        timeout_s: socket connect and read timeout; a slower server gives ``LedgerError``.
        idempotency_ttl_s: how long idempotency keys are remembered.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "kit:budget",
        timeout_s: float = 2.0,
        idempotency_ttl_s: float = IDEMPOTENCY_TTL_S,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._index = f"{prefix}:index"
        self._base = f"{prefix}:c:"
        self._idempotency_ttl_s = idempotency_ttl_s
        try:
            self._client: Any = redis_lib.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        except ValueError as exc:
            raise LedgerError(f"redis ledger {url!r}: bad URL: {exc}") from exc
        self._reserve = self._client.register_script(_RESERVE)
        self._commit = self._client.register_script(_COMMIT)
        self._release = self._client.register_script(_RELEASE)
        self._usage = self._client.register_script(_USAGE)
        self._live = self._client.register_script(_LIVE)
        self._mark_alert = self._client.register_script(_MARK_ALERT)

    def _run(self, what: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except redis_lib.RedisError as exc:
            raise LedgerError(f"redis ledger {self.url!r}: {what} failed: {exc}") from exc

    def _counter_args(
        self, amounts: Sequence[tuple[Counter, int]], now_s: float
    ) -> tuple[list[str], list[Any]]:
        keys = [self._index]
        args: list[Any] = []
        for counter, amount in amounts:
            keys.append(self._base + counter.key)
            args += (counter.key, amount, repr(counter.active_until(now_s)), *_static(counter))
        return keys, args

    def reserve(
        self,
        reservation_id: str,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        expires_at_s: float,
    ) -> ReserveOutcome:
        """See :meth:`LedgerBackend.reserve`."""
        check_amounts(amounts)
        keys, args = self._counter_args(amounts, now_s)
        reply = self._run(
            "reserve", self._reserve, keys, [repr(now_s), repr(expires_at_s), reservation_id, *args]
        )
        usage = tuple((int(reply[i]), int(reply[i + 1])) for i in range(2, len(reply), 2))
        return ReserveOutcome(bool(reply[0]), int(reply[1]), usage)

    def commit(
        self,
        reservation_id: str | None,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        idempotency_key: str | None = None,
    ) -> list[tuple[int, int]]:
        """See :meth:`LedgerBackend.commit`."""
        check_amounts(amounts)
        keys, args = self._counter_args(amounts, now_s)
        head = [
            repr(now_s),
            reservation_id or "",
            idempotency_key or "",
            repr(now_s + self._idempotency_ttl_s),
        ]
        reply = self._run("commit", self._commit, keys, head + args)
        return [(int(reply[i]), int(reply[i + 1])) for i in range(0, len(reply), 2)]

    def release(self, reservation_id: str, counters: Sequence[Counter], *, now_s: float) -> None:
        """See :meth:`LedgerBackend.release`."""
        keys = [self._base + counter.key for counter in counters]
        self._run("release", self._release, keys, [reservation_id])

    def usage(self, counters: Sequence[Counter], *, now_s: float) -> list[tuple[int, int]]:
        """See :meth:`LedgerBackend.usage`."""
        keys = [self._base + counter.key for counter in counters]
        reply = self._run("usage", self._usage, keys, [repr(now_s)])
        return [(int(reply[i]), int(reply[i + 1])) for i in range(0, len(reply), 2)]

    def live_counters(self, *, now_s: float) -> list[CounterStatus]:
        """See :meth:`LedgerBackend.live_counters`."""
        reply = self._run("status", self._live, [self._index], [repr(now_s), self._base])
        out = []
        for row in reply:
            meta, limit, enforce, rolling_s, bucket_s, spent, reserved = (
                v.decode() if isinstance(v, bytes) else str(v) for v in row
            )
            budget, unit, scope_key, start, end = json.loads(meta)
            counter = Counter(
                budget=budget,
                unit=unit,
                scope_key=scope_key,
                window_start=start,
                window_end=end,
                rolling_s=int(rolling_s),
                bucket_s=int(bucket_s),
                limit=int(limit),
                enforce=enforce == "1",
            )
            out.append(
                CounterStatus(
                    counter=counter, spent=int(float(spent)), reserved=int(float(reserved))
                )
            )
        return out

    def mark_alert_sent(
        self, counter: Counter, *, threshold: float, kind: str, now_s: float
    ) -> bool:
        """See :meth:`LedgerBackend.mark_alert_sent`."""
        expiry = min(counter.alert_expiry(now_s), 1e300)
        args = [
            repr(now_s),
            f"{threshold!r}|{kind}",
            repr(expiry),
            counter.key,
            0,
            repr(counter.active_until(now_s)),
            *_static(counter),
        ]
        reply = self._run(
            "mark_alert_sent", self._mark_alert, [self._index, self._base + counter.key], args
        )
        return bool(reply)

    def ping(self) -> bool:
        """One bare round trip (used by the benchmark as the baseline)."""
        try:
            return bool(self._client.ping())
        except redis_lib.RedisError as exc:
            raise LedgerError(f"redis ledger {self.url!r}: ping failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection pool; idempotent."""
        self._client.close()
