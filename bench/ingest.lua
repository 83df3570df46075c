-- wrk script for bench/ingest.py: POST /api/v1/events with a realistic event mix.
--
-- wrk ... -s bench/ingest.lua URL -- MODE BATCH_SIZE API_KEY BRAND_IDS NONCE [PROMO_CODES]
--   MODE        "batch" (BATCH_SIZE events per request) or "single" (one event per request)
--   BRAND_IDS   comma-separated brand UUIDs; PROMO_CODES comma-separated (may be empty)
--   NONCE       [a-z0-9] only; makes every idempotency key of the run unique:
--               NONCE-THREAD-REQUEST-INDEX
--
-- Each wrk thread keeps its own pool of players, so deposits follow registrations:
-- registration creates a player, first_deposit goes to the oldest registered player
-- without one, deposits / NGR updates / chargebacks go to players with a first deposit.
-- The random stream is seeded with the thread id: the mix is the same on every run.
--
-- done() prints one line "BENCH_JSON {...}" with the counts, the latency percentiles and
-- the requests whose answer never arrived (in flight when wrk stopped, or socket errors):
-- bench/ingest.py checks the database against these numbers.

local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
   table.insert(threads, thread)
end

local function split(text)
   local out = {}
   for item in string.gmatch(text or "", "[^,]+") do
      table.insert(out, item)
   end
   return out
end

-- Per-thread state (each wrk thread has its own Lua state).
local mode, batch_size, api_key, brands, nonce, promos, attribution
local headers
local registered, with_ftd = 0, 0
sent, answered = 0, 0
accepted, duplicates, errors, bad_status = 0, 0, 0, 0
outstanding = {}
sample_error = ""
local key_pattern

local MIX = {
   -- event_type, weight (percent)
   {"registration", 25}, {"first_deposit", 20}, {"deposit", 30},
   {"ngr_update", 20}, {"chargeback", 5},
}
local COUNTRIES = {"DE", "GB", "FI", "SE", "NO", "CA", "IE", "NZ"}

function init(args)
   mode = args[1] or "batch"
   batch_size = tonumber(args[2] or "100")
   api_key = args[3]
   brands = split(args[4])
   nonce = args[5]
   promos = split(args[6])
   -- "off": registrations without ip_address and promo_code (organic players), so that
   -- the attribution rules have nothing to look up: the A/B of attribution's cost.
   attribution = args[7] or "on"
   if mode == "single" then batch_size = 1 end
   headers = {["Content-Type"] = "application/json", ["X-API-Key"] = api_key}
   key_pattern = '"idempotency_key":%s*"' .. nonce .. "%-" .. tid .. "%-(%d+)%-"
   math.randomseed(tid * 7919)
end

local function pick_type()
   local roll = math.random(100)
   for _, item in ipairs(MIX) do
      roll = roll - item[2]
      if roll <= 0 then return item[1] end
   end
   return "deposit"
end

local function amount(low, high)
   return string.format("%d.%02d", math.random(low, high), math.random(0, 99))
end

local function player(index)
   return nonce .. "-" .. tid .. "-p" .. index
end

local function brand_of(index)
   return brands[(index % #brands) + 1]
end

local function event_json(key, now)
   local kind = pick_type()
   if kind ~= "registration" and kind ~= "first_deposit" and with_ftd == 0 then
      kind = "registration"
   end
   if kind == "first_deposit" and with_ftd >= registered then
      kind = "registration"
   end
   local index, extra
   local time = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 60)
   if kind == "registration" then
      registered = registered + 1
      index = registered
      time = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 600)
      if attribution == "off" then
         extra = string.format(',"country":"%s"', COUNTRIES[math.random(#COUNTRIES)])
      else
         extra = string.format(
            ',"country":"%s","ip_address":"10.%d.%d.%d","user_agent":"Mozilla/5.0 (bench)"',
            COUNTRIES[math.random(#COUNTRIES)], math.random(0, 255), math.random(0, 255),
            math.random(1, 254))
      end
      if attribution ~= "off" and #promos > 0 and math.random(2) == 1 then
         extra = extra .. string.format(',"promo_code":"%s"', promos[math.random(#promos)])
      end
   elseif kind == "first_deposit" then
      with_ftd = with_ftd + 1
      index = with_ftd
      extra = string.format(',"currency":"EUR","amount":"%s"', amount(20, 200))
   elseif kind == "deposit" then
      index = math.random(with_ftd)
      extra = string.format(',"currency":"EUR","amount":"%s"', amount(10, 500))
   elseif kind == "ngr_update" then
      index = math.random(with_ftd)
      extra = string.format(',"currency":"EUR","amount":"%s"', amount(-50, 300))
   else
      index = math.random(with_ftd)
      extra = string.format(',"currency":"EUR","amount":"%s"', amount(10, 50))
   end
   return string.format(
      '{"event_type":"%s","event_time":"%s","brand_id":"%s","player_external_ref":"%s",' ..
      '"idempotency_key":"%s"%s}',
      kind, time, brand_of(index), player(index), key, extra)
end

function request()
   sent = sent + 1
   outstanding[sent] = true
   local now = os.time()
   local prefix = nonce .. "-" .. tid .. "-" .. sent .. "-"
   local body
   if mode == "single" then
      body = event_json(prefix .. "1", now)
   else
      local parts = {}
      for i = 1, batch_size do
         parts[i] = event_json(prefix .. i, now)
      end
      body = '{"events":[' .. table.concat(parts, ",") .. "]}"
   end
   return wrk.format("POST", "/api/v1/events", headers, body)
end

function response(status, headers, body)
   answered = answered + 1
   local request_no = tonumber(string.match(body, key_pattern) or "")
   if request_no then outstanding[request_no] = nil end
   if mode == "single" then
      if status == 201 then
         accepted = accepted + 1
      elseif status == 200 then
         duplicates = duplicates + 1
      else
         bad_status = bad_status + 1
         if status == 400 then errors = errors + 1 end
         if sample_error == "" then sample_error = status .. " " .. string.sub(body, 1, 400) end
      end
      return
   end
   if status ~= 200 then
      bad_status = bad_status + 1
      if sample_error == "" then sample_error = status .. " " .. string.sub(body, 1, 400) end
      return
   end
   accepted = accepted + tonumber(string.match(body, '"accepted":%s*(%d+)') or "0")
   duplicates = duplicates + tonumber(string.match(body, '"duplicates":%s*(%d+)') or "0")
   local errs = tonumber(string.match(body, '"errors":%s*(%d+)') or "0")
   errors = errors + errs
   if errs > 0 and sample_error == "" then
      sample_error = string.sub(string.match(body, '"errors":%s*%[.-%]') or body, 1, 400)
   end
end

local function json_string(text)
   return '"' .. string.gsub(text, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, requests)
   local totals = {sent = 0, answered = 0, accepted = 0, duplicates = 0, errors = 0,
                   bad_status = 0}
   local lost = {}
   local samples = {}
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
      local tid = thread:get("tid")
      for request_no, _ in pairs(thread:get("outstanding") or {}) do
         table.insert(lost, string.format('"%s-%d-"', tid, request_no))
      end
      local sample = thread:get("sample_error") or ""
      if sample ~= "" then table.insert(samples, json_string(sample)) end
   end
   local parts = {}
   for name, value in pairs(totals) do
      table.insert(parts, string.format('"%s":%d', name, value))
   end
   io.write(string.format(
      'BENCH_JSON {%s,"duration_us":%d,"requests":%d,' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
      '"unanswered":[%s],"sample_errors":[%s]}\n',
      table.concat(parts, ","), summary.duration, summary.requests,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, table.concat(lost, ","), table.concat(samples, ",")))
end
