/**
 * The second half of the metrics script (./lua.ts has the first and the
 * layout): 4. the group watermark, the lowest of the live instances', never
 * moving back; 5. closing the windows the watermark passed and retiring
 * those older than the retention; 6. the JSON strings of the latest window
 * and the touched categories, and the `metrics:updates` message; then the
 * script's return value. It is text appended to the first half, not a
 * script of its own: both halves run as one atomic script.
 *
 * @module
 */

import { METRIC_FIELDS } from "../../lib/contracts.ts";

/** A Lua string literal of `s`. */
export const str = (s: string) => JSON.stringify(s);
/** A Lua pattern matching `s` literally. */
export const literal = (s: string) => s.replace(/[\^$()%.[\]*+\-?]/g, "%$&");
/** `[prefix, suffix]` of a field name made by `make`, e.g. `["category:", ":units"]`. */
const around = (make: (x: string) => string) => make("\u0000").split("\u0000") as [string, string];
export const [CATEGORY, UNITS] = around(METRIC_FIELDS.categoryUnits);
export const [, REVENUE] = around(METRIC_FIELDS.categoryRevenueCents);
export const [BEHAVIOR] = around(METRIC_FIELDS.behavior);

/** Steps 4 to 6 and the return value, in the variables the first half defines. */
export const WINDOWS_LUA =
  `-- 4. The group watermark: the lowest of the live instances', never moving back.
if wmArg ~= '' then
  if wmArg == 'none' then
    redis.call('HDEL', instancesKey, instance)
  else
    redis.call('HSET', instancesKey, instance, wmArg .. '@' .. int(now))
  end
  local entries = redis.call('HGETALL', instancesKey)
  local low, hold, live = nil, false, false
  for i = 1, #entries, 2 do
    local wm, at = string.match(entries[i + 1], '^(.*)@(%d+)$')
    at = tonumber(at)
    if at and now - at <= staleMs then
      live = true
      local x = tonumber(wm)
      if x == nil then hold = true elseif low == nil or x < low then low = x end
    elseif not at or now - at > 10 * staleMs then
      redis.call('HDEL', instancesKey, entries[i])
    end
  end
  if live and not hold and low ~= nil and (P == nil or low > P) then
    P = low
    redis.call('HSET', wmKey, 'group_ms', int(P))
  end
end

-- 5. Close the windows the watermark passed; retire those older than the retention.
local finalized, trimmed = 0, 0
if P ~= nil then
  local through = tonumber(redis.call('HGET', wmKey, 'final_through_ms') or '')
  local cutoff = P - windowMs - allowed
  if through == nil or cutoff > through then
    local from = through and ('(' .. int(through)) or '-inf'
    for _, start in ipairs(redis.call('ZRANGEBYSCORE', windowsKey, from, int(cutoff))) do
      redis.call('HSET', windowPrefix .. start, FINAL, '1')
      finalized = finalized + 1
    end
    redis.call('HSET', wmKey, 'final_through_ms', int(cutoff))
  end
  local oldest = P - windowMs - retention
  for _, start in ipairs(redis.call('ZRANGEBYSCORE', windowsKey, '-inf', int(oldest))) do
    local key = windowPrefix .. start
    local h = redis.call('HGETALL', key)
    for i = 1, #h, 2 do
      if h[i] ~= FINAL then redis.call('HINCRBY', expiredKey, h[i], h[i + 1]) end
    end
    redis.call('DEL', key)
    redis.call('ZREM', windowsKey, start)
    trimmed = trimmed + 1
  end
end

-- 6. The JSON strings of the latest window and the touched categories; then tell subscribers.
if added > 0 or finalized > 0 or trimmed > 0 then
  local stamp = iso(now)
  local top = redis.call('ZREVRANGE', windowsKey, 0, 0)
  local latest = 'null'
  if top[1] then
    local start = tonumber(top[1])
    local ws, we = iso(start), iso(start + windowMs)
    latest = '"' .. ws .. '"'
    local h = redis.call('HGETALL', windowPrefix .. top[1])
    local m = {}
    for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
    local n, cents = tonumber(m[TXN] or '0'), tonumber(m[REV] or '0')
    local avg = 0
    if n > 0 then avg = math.floor((2 * cents + n) / (2 * n)) end
    redis.call('SET', txnKey, '{"transaction_count":' .. int(n)
      .. ',"total_revenue":' .. money(cents) .. ',"total_revenue_cents":' .. int(cents)
      .. ',"avg_order_value":' .. money(avg) .. ',"avg_order_value_cents":' .. int(avg)
      .. ',"window_start":"' .. ws .. '","window_end":"' .. we
      .. '","last_update":"' .. stamp .. '"}')
    local counts, known = {}, {}
    for _, t in ipairs(BEHAVIOR_TYPES) do
      known[t] = true
      counts[#counts + 1] = cjson.encode(t) .. ':' .. (m[BEHAVIOR .. t] or '0')
    end
    for k, v in pairs(m) do
      local t = string.match(k, ${str(`^${literal(BEHAVIOR)}(.+)$`)})
      if t and not known[t] then counts[#counts + 1] = cjson.encode(t) .. ':' .. v end
    end
    redis.call('SET', behaviorKey, '{"counts":{' .. table.concat(counts, ',')
      .. '},"window_start":"' .. ws .. '","window_end":"' .. we
      .. '","last_update":"' .. stamp .. '"}')
  end
  for cat in pairs(categories) do
    local v = redis.call('HMGET', totalsKey, CATEGORY .. cat .. UNITS, CATEGORY .. cat .. REVENUE)
    local units, cents = tonumber(v[1] or '0'), tonumber(v[2] or '0')
    redis.call('SET', productsPrefix .. cat, '{"category":' .. cjson.encode(cat)
      .. ',"product_sales":' .. int(units) .. ',"category_revenue":' .. money(cents)
      .. ',"category_revenue_cents":' .. int(cents) .. ',"last_update":"' .. stamp .. '"}')
  end
  redis.call('PUBLISH', updatesKey, '{"at":"' .. stamp .. '","events":' .. added
    .. ',"latest_window_start":' .. latest .. '}')
end

return {added, duplicates, lateCount, P and int(P) or '', finalized, trimmed}
`;
