/**
 * The Redis script that applies one chunk of events atomically: it
 * de-duplicates by event id (bitmaps), adds each new event to the totals and
 * to its window (or, when the window is final, to the late sums), moves the
 * group watermark, closes and retires windows, rewrites the JSON strings and
 * publishes `metrics:updates`. Exactness rests on this being one script: an
 * event's bit is set if and only if its increments are applied.
 *
 * Layout (built by ./script.ts from ./reduce.ts chunks):
 * - KEYS: totals, late, expired, windows, watermark, instances, transactions,
 *   behavior, updates channel, dead-letter counters, dead-letter seen set.
 * - ARGV: window prefix, products prefix, instance id, local watermark
 *   (`""` leave alone, `none`, `hold` or ms), window ms, allowed lateness ms,
 *   retention ms, stale ms; then four counted lists (fields, windows, groups,
 *   dead letters as counter-field/member pairs); then per bitmap its key, its
 *   event count and its events as one MessagePack array (./pack.ts; see
 *   `EncodedChunk` in ./reduce.ts).
 *
 * @module
 */

import { BEHAVIOR_TYPES, METRIC_FIELDS } from "../../lib/contracts.ts";
import { BEHAVIOR, CATEGORY, literal, REVENUE, str, UNITS, WINDOWS_LUA } from "./lua_windows.ts";

/** The script source (Lua 5.1, Redis 7). */
export const METRICS_LUA = `#!lua
local totalsKey, lateKey, expiredKey, windowsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local wmKey, instancesKey, txnKey, behaviorKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local updatesKey, dlCountKey, dlSeenKey = KEYS[9], KEYS[10], KEYS[11]
local windowPrefix, productsPrefix, instance, wmArg = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local windowMs, allowed = tonumber(ARGV[5]), tonumber(ARGV[6])
local retention, staleMs = tonumber(ARGV[7]), tonumber(ARGV[8])
local FINAL, LATE = ${str(METRIC_FIELDS.final)}, ${str(METRIC_FIELDS.lateEvents)}
local TXN, REV = ${str(METRIC_FIELDS.transactionCount)}, ${str(METRIC_FIELDS.revenueCents)}
local BEHAVIOR, CATEGORY = ${str(BEHAVIOR)}, ${str(CATEGORY)}
local UNITS, REVENUE = ${str(UNITS)}, ${str(REVENUE)}
local BEHAVIOR_TYPES = {${BEHAVIOR_TYPES.map(str).join(", ")}}

local function int(v) return string.format('%d', v) end
local function money(cents)
  return string.format('%d.%02d', math.floor(cents / 100), cents % 100)
end
local function iso(ms)
  local s = math.floor(ms / 1000)
  local milli = ms - s * 1000
  local days = math.floor(s / 86400)
  local secs = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(secs / 3600), math.floor(secs % 3600 / 60), secs % 60, milli)
end

local p = 9
local function list()
  local n = tonumber(ARGV[p])
  local out = {}
  for i = 1, n do out[i] = ARGV[p + i] end
  p = p + n + 1
  return out
end
local fields, windows, groupList, deadLetters = list(), list(), list(), list()
for i = 1, #windows do windows[i] = tonumber(windows[i]) end
local groups = {}
do
  local i = 1
  while i <= #groupList do
    local m = tonumber(groupList[i + 2])
    local fixed = {}
    for j = 1, 2 * m do fixed[j] = tonumber(groupList[i + 2 + j]) end
    groups[#groups + 1] = {
      w = tonumber(groupList[i]), var = tonumber(groupList[i + 1]), fixed = fixed,
    }
    i = i + 3 + 2 * m
  end
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- 1. De-duplicate (the old bit says "seen") and count new events per group, summing their
--    variable amounts. A section whose ids are dense reads its bitmap's byte range once
--    (GETRANGE), tests and sets the bits here and writes the range back (SETRANGE); a sparse one
--    uses one BITFIELD per 1,000 ids. Bit b is bit 7 - b % 8 of byte b / 8, as in BITFIELD.
local counts, sums = {}, {}
local added, duplicates = 0, 0
local function count(ev, e)
  local g = ev[e + 2]
  counts[g] = (counts[g] or 0) + 1
  sums[g] = (sums[g] or 0) + ev[e + 3]
  added = added + 1
end
local MASK = {128, 64, 32, 16, 8, 4, 2, 1}
local function dense(key, ev, k, first, last)
  local s = redis.call('GETRANGE', key, first, last)
  local byte, band, bor, floor = string.byte, bit.band, bit.bor, math.floor
  local cur, changed = {}, false
  for j = 0, k - 1 do
    local e = 3 * j
    local b = ev[e + 1]
    local i = floor(b / 8) - first
    local v = cur[i]
    if v == nil then v = byte(s, i + 1) or 0 end
    local m = MASK[b % 8 + 1]
    if band(v, m) == 0 then
      cur[i] = bor(v, m)
      changed = true
      count(ev, e)
    else
      cur[i] = v
      duplicates = duplicates + 1
    end
  end
  if changed then
    local n = last - first + 1
    local bytes, parts = {}, {}
    for i = 0, n - 1 do bytes[i + 1] = cur[i] or byte(s, i + 1) or 0 end
    for a = 1, n, 4000 do parts[#parts + 1] = string.char(unpack(bytes, a, math.min(n, a + 3999))) end
    redis.call('SETRANGE', key, first, table.concat(parts))
  end
end
local function sparse(key, ev, k)
  local done = 0
  while done < k do
    local n = math.min(1000, k - done)
    local args = {}
    for j = 0, n - 1 do
      local a = 4 * j
      args[a + 1] = 'SET'; args[a + 2] = 'u1'; args[a + 3] = ev[3 * (done + j) + 1]; args[a + 4] = '1'
    end
    local old = redis.call('BITFIELD', key, unpack(args))
    for j = 0, n - 1 do
      if old[j + 1] == 0 then count(ev, 3 * (done + j)) else duplicates = duplicates + 1 end
    end
    done = done + n
  end
end
local q, nargs = p, #ARGV
while q <= nargs do
  -- A section: its bitmap key, its event count, its events packed (bit, group, amount each).
  local key, k, ev = ARGV[q], tonumber(ARGV[q + 1]), cmsgpack.unpack(ARGV[q + 2])
  q = q + 3
  if k > 0 then
    local lo, hi = ev[1], ev[1]
    for j = 1, k - 1 do
      local b = ev[3 * j + 1]
      if b < lo then lo = b elseif b > hi then hi = b end
    end
    local first, last = math.floor(lo / 8), math.floor(hi / 8)
    -- Dense: at most 2 bytes of bitmap per event (plus a little), where rewriting the range
    -- costs less than BITFIELD's four arguments per event.
    if last - first < 2 * k + 64 then dense(key, ev, k, first, last) else sparse(key, ev, k) end
  end
end

-- 2. Each group's sums go to its window, or to the late sums when the window is final.
local P = tonumber(redis.call('HGET', wmKey, 'group_ms') or '')
local lateOf = {}
local function windowIsLate(w)
  local v = lateOf[w]
  if v == nil then
    local start = windows[w]
    v = (P ~= nil and start + windowMs + allowed <= P)
      or redis.call('HGET', windowPrefix .. int(start), FINAL) == '1'
    lateOf[w] = v
  end
  return v
end
local totals, late, perWindow = {}, {}, {}
local lateCount = 0
local function add(target, f, v)
  totals[f] = (totals[f] or 0) + v
  target[f] = (target[f] or 0) + v
end
for g, c in pairs(counts) do
  local group = groups[g]
  local target
  if windowIsLate(group.w) then
    lateCount = lateCount + c
    target = late
  else
    target = perWindow[group.w]
    if not target then target = {}; perWindow[group.w] = target end
  end
  local fixed = group.fixed
  for j = 1, #fixed, 2 do add(target, fixed[j], fixed[j + 1] * c) end
  if group.var > 0 then add(target, group.var, sums[g]) end
end

-- 3. Write the sums: one HINCRBY per (key, field).
local categories = {}
for f, v in pairs(totals) do
  redis.call('HINCRBY', totalsKey, fields[f], int(v))
  local cat = string.match(fields[f], ${str(`^${literal(CATEGORY)}(.+)${literal(UNITS)}$`)})
    or string.match(fields[f], ${str(`^${literal(CATEGORY)}(.+)${literal(REVENUE)}$`)})
  if cat then categories[cat] = true end
end
-- late_events is always present once anything was counted, so that a reader sees 0, not nil.
if added > 0 then redis.call('HINCRBY', totalsKey, LATE, lateCount) end
if lateCount > 0 then
  redis.call('HINCRBY', lateKey, LATE, lateCount)
  for f, v in pairs(late) do redis.call('HINCRBY', lateKey, fields[f], int(v)) end
end
for w, sums in pairs(perWindow) do
  local start = int(windows[w])
  for f, v in pairs(sums) do redis.call('HINCRBY', windowPrefix .. start, fields[f], int(v)) end
  redis.call('ZADD', windowsKey, start, start)
end
for i = 1, #deadLetters, 2 do
  if redis.call('SADD', dlSeenKey, deadLetters[i + 1]) == 1 then
    redis.call('HINCRBY', dlCountKey, deadLetters[i], 1)
  end
end

${WINDOWS_LUA}`;
