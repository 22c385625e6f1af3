"""The Lua scripts Redis runs atomically for the fleet features.

Each script reads the server's own clock (``TIME``), so that hosts with skewed clocks agree.
Times are milliseconds. Scripts are replicated by their effects (the default from Redis 5),
which makes reading ``TIME`` before writing safe.
"""

from __future__ import annotations

__all__ = [
    "JOIN",
    "HEARTBEAT",
    "CLAIM",
    "SEND",
    "SETTLE",
    "ACQUIRE",
    "COOL_DOWN",
    "LOWER_LIMIT",
    "ACQUIRE_KEY",
]

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

_LAUNCH_HELPERS = (
    _NOW
    + """
local function alive(workers, worker, lease)
  local beat = redis.call('HGET', workers, worker)
  return beat and (now - tonumber(beat)) <= lease
end
local function move(counts, from, to)
  if from then redis.call('HINCRBY', counts, from, -1) end
  if to then redis.call('HINCRBY', counts, to, 1) end
end
"""
)

JOIN = (
    _NOW
    + """
-- KEYS: meta, workers, duplicates. ARGV: worker, lease ms.
-- Joins the run of the live workers, or starts a new run when there are none.
local lease = tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[2])
local live = 0
for i = 1, #all, 2 do
  if now - tonumber(all[i + 1]) > lease then
    redis.call('HDEL', KEYS[2], all[i])
  else
    live = live + 1
  end
end
local run
if live == 0 then
  run = redis.call('HINCRBY', KEYS[1], 'run', 1)
  redis.call('DEL', KEYS[3])
else
  run = tonumber(redis.call('HGET', KEYS[1], 'run'))
end
redis.call('HSETNX', KEYS[1], 'created', now)
redis.call('HSET', KEYS[2], ARGV[1], now)
return {run, live}
"""
)

HEARTBEAT = (
    _NOW
    + """
-- KEYS: workers. ARGV: worker, lease ms. 1 = still a member, 0 = presumed dead (stop).
local beat = redis.call('HGET', KEYS[1], ARGV[1])
if not beat or now - tonumber(beat) > tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], now)
return 1
"""
)

CLAIM = (
    _LAUNCH_HELPERS
    + """
-- KEYS: leads, workers, duplicates, counts.
-- ARGV: identity, worker, run, index, destination, lease ms.
local id, me = ARGV[1], ARGV[2]
local run, index, lease = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
if not alive(KEYS[2], me, lease) then return {'lost'} end
local function save(r)
  r.t = now
  redis.call('HSET', KEYS[1], id, cjson.encode(r))
end
local raw = redis.call('HGET', KEYS[1], id)
if not raw then
  save({s = 'claimed', w = me, r = run, i = index, d = ARGV[5], sr = run, si = index})
  move(KEYS[4], nil, 'claimed')
  return {'granted'}
end
local r = cjson.decode(raw)
if r.sr == run and r.si ~= index then
  redis.call('HSET', KEYS[3], index, r.si)
  return {'duplicate', r.si}
end
r.sr = run
r.si = index
if r.s == 'claimed' or r.s == 'sending' then
  if r.w == me and r.r == run and r.i == index then
    save(r)
    if r.s == 'claimed' then return {'granted'} end
    return {'busy', me}
  end
  if alive(KEYS[2], r.w, lease) then
    save(r)
    return {'busy', r.w}
  end
  if r.s == 'claimed' then
    -- Its worker died before sending it: nobody was dialed, so take it over.
    r.w = me
    r.r = run
    r.i = index
    save(r)
    return {'granted'}
  end
  r.s = 'unknown'
  r.e = 'the worker sending this request (' .. r.w .. ') stopped before recording an outcome'
  move(KEYS[4], 'sending', 'unknown')
  save(r)
  return {'settled', 'unknown', '', r.e, r.i, r.w}
end
if r.s == 'released' or (r.s == 'failed' and r.r < run) then
  move(KEYS[4], r.s, 'claimed')
  r.s = 'claimed'
  r.w = me
  r.r = run
  r.i = index
  r.c = nil
  r.e = nil
  save(r)
  return {'granted'}
end
save(r)
return {'settled', r.s, r.c or '', r.e or '', r.i, r.w or ''}
"""
)

SEND = (
    _LAUNCH_HELPERS
    + """
-- KEYS: leads, workers, counts. ARGV: identity, worker, run, lease ms.
local me, run = ARGV[2], tonumber(ARGV[3])
if not alive(KEYS[2], me, tonumber(ARGV[4])) then return 'lost' end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'lost' end
local r = cjson.decode(raw)
if r.w ~= me or r.r ~= run then return 'lost' end
if r.s == 'sending' then return 'ok' end
if r.s ~= 'claimed' then return 'lost' end
r.s = 'sending'
r.t = now
move(KEYS[3], 'claimed', 'sending')
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
return 'ok'
"""
)

SETTLE = (
    _LAUNCH_HELPERS
    + """
-- KEYS: leads, counts. ARGV: identity, worker, run, status, call id, error.
local me, run, status = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.w == me and r.r == run and (r.s == 'claimed' or r.s == 'sending') then
  move(KEYS[2], r.s, status)
elseif status == 'launched' and r.s == 'unknown' and r.w == me then
  -- Presumed dead while the request was in flight, yet it got its answer: record the truth.
  move(KEYS[2], 'unknown', 'launched')
else
  return 0
end
r.s = status
if ARGV[5] ~= '' then r.c = ARGV[5] end
if ARGV[6] ~= '' then r.e = ARGV[6] else r.e = nil end
r.t = now
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
return 1
"""
)

ACQUIRE = (
    _NOW
    + """
-- KEYS: limiter state (hash), members (sorted set).
-- ARGV: budget per minute, period ms, margin ms, member, member window ms.
-- A generic cell-rate algorithm: the budget of one period (the per-minute budget scaled to the
-- period) is a burst of 5 % plus the rest spread evenly over the period and the margin, so no
-- window of one period sees more than its share. Returns {allowed (1/0), wait ms, per-minute
-- budget in force, members seen, ms left of a cool-down}.
local state = KEYS[1]
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
local members = redis.call('ZCARD', KEYS[2])
local values = redis.call('HMGET', state, 'tat', 'cool', 'limit', 'limit_until')
local cool = tonumber(values[2]) or 0
local budget = tonumber(ARGV[1])
local lowered = tonumber(values[3])
if lowered and lowered < budget and (tonumber(values[4]) or 0) > now then budget = lowered end
if cool > now then return {0, cool - now, budget, members, cool - now} end
local period = tonumber(ARGV[2])
local per_period = math.max(1, math.floor(budget * period / 60000))
local burst = math.max(1, math.floor(per_period / 20))
local interval = (period + tonumber(ARGV[3])) / math.max(per_period - burst, 1)
local tat = math.max(tonumber(values[1]) or now, now)
local allow_at = tat - (burst - 1) * interval
if allow_at > now then return {0, math.ceil(allow_at - now), budget, members, 0} end
redis.call('HSET', state, 'tat', tostring(tat + interval))
redis.call('PEXPIRE', state, math.max(period * 10, cool - now + 1000))
return {1, 0, budget, members, 0}
"""
)

COOL_DOWN = (
    _NOW
    + """
-- KEYS: limiter state. ARGV: milliseconds, budget per minute, period ms, margin ms.
-- Holds everyone until now + ms; the bucket is empty when the cool-down ends.
local until_ms = now + tonumber(ARGV[1])
local cool = tonumber(redis.call('HGET', KEYS[1], 'cool')) or 0
if until_ms > cool then
  redis.call('HSET', KEYS[1], 'cool', until_ms)
  cool = until_ms
end
local period = tonumber(ARGV[3])
local per_period = math.max(1, math.floor(tonumber(ARGV[2]) * period / 60000))
local burst = math.max(1, math.floor(per_period / 20))
local interval = (period + tonumber(ARGV[4])) / math.max(per_period - burst, 1)
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat')) or now
local empty = cool + (burst - 1) * interval
if empty > tat then redis.call('HSET', KEYS[1], 'tat', tostring(empty)) end
redis.call('PEXPIRE', KEYS[1], math.max(period * 10, cool - now + 1000))
return cool
"""
)

LOWER_LIMIT = (
    _NOW
    + """
-- KEYS: limiter state. ARGV: per-minute budget the server announced, ms it stays in force.
local current = tonumber(redis.call('HGET', KEYS[1], 'limit'))
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'limit_until')) or 0
local wanted = tonumber(ARGV[1])
if not current or until_ms <= now or wanted < current then
  redis.call('HSET', KEYS[1], 'limit', wanted, 'limit_until', now + tonumber(ARGV[2]))
end
return 1
"""
)

ACQUIRE_KEY = (
    _NOW
    + """
-- KEYS: the key's window (sorted set). ARGV: requests, window ms, unique member.
-- An exact sliding window: returns 0 when a slot was taken, else ms until one frees.
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""
)
