-- wrk script of bench/review_app.py: each connection is one signed-in reviewer who follows "next":
-- the session's start link (GET .../next), then the item page it redirects to (GET), then an answer
-- to it (POST, the form the page shows), whose redirect names the next item; a reviewer sent back to
-- the queue asks again twice (300 ms apart) and then stops.
--
-- The reviewers come from the plan file named by $REVIEW_APP_BENCH_PLAN (written by
-- bench/review_app.py): line 1 the session's path, then one line per reviewer: the Cookie header
-- value <TAB> the form's csrf_token. Run with as many threads as connections (one reviewer per
-- thread); done() prints p50/p95/max per request kind.
--
-- Only strings and numbers cross between wrk's Lua states: its table copy (thread:get/set) unbalances
-- the Lua stack and crashes on nested tables, so lists travel as space-separated text.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *moment);
]]
local CLOCK_MONOTONIC = 1
local moment = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, moment)
  return tonumber(moment.tv_sec) * 1000000 + tonumber(moment.tv_nsec) / 1000
end

local function split(text, separator)
  local parts = {}
  for part in string.gmatch(text, "[^" .. separator .. "]+") do
    parts[#parts + 1] = part
  end
  return parts
end

local function url_encode(text)
  return (string.gsub(text, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- setup() runs in wrk's main Lua state, once per thread: hand each thread its reviewer.

local threads = {}
local plan = nil

local function read_plan(path)
  if not path then
    error("REVIEW_APP_BENCH_PLAN is not set: run this script through bench/review_app.py")
  end
  local lines = {}
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  local reviewers = {}
  for index = 2, #lines do
    local fields = split(lines[index], "\t")
    reviewers[#reviewers + 1] = { cookie = fields[1], csrf = fields[2] }
  end
  return { session = lines[1], reviewers = reviewers }
end

function setup(thread)
  plan = plan or read_plan(os.getenv("REVIEW_APP_BENCH_PLAN"))
  local index = #threads + 1
  local reviewer = plan.reviewers[index]
  if not reviewer then
    error(string.format("thread %d has no reviewer: the plan holds %d", index, #plan.reviewers))
  end
  thread:set("cookie", reviewer.cookie)
  thread:set("csrf", reviewer.csrf)
  thread:set("session", plan.session)
  threads[index] = thread
end

-- The rest runs in each thread's own Lua state: one reviewer, one connection.

rounds = 0         -- items answered so far
page_us, submit_us, next_us = "", "", ""        -- latencies in microseconds, space separated
page_failed, submit_failed, next_failed = 0, 0, 0
first_failure = ""
local EXPECTED = { page = 200, submit = 303, next = 303 }
local kind = "next"  -- what the next request is: next, page or submit
local path = nil     -- the item the reviewer was sent to
local wrote = nil  -- the fp_wrote cookie the last submit set (read-your-writes across processes)
local started, sent
local misses = 0   -- "next" answered with the queue in a row
local MAX_MISSES = 3

local function cookies()
  if wrote then
    return cookie .. "; fp_wrote=" .. wrote
  end
  return cookie
end

local function answer_form(round)
  -- the rating and summary change every round, so each submit lands a real (overriding) answer
  local fields = {
    { "csrf_token", csrf },
    { "answer:quality", "Good" }, { "comment:quality", "fine" },
    { "answer:issues", "Too long" },
    { "answer:rating", tostring(round % 5 + 1) },
    { "answer:summary", "round " .. round },
    { "answer:expected_facts", "a fact" },
    { "answer:correct", "true" },
  }
  local encoded = {}
  for _, pair in ipairs(fields) do
    encoded[#encoded + 1] = url_encode(pair[1]) .. "=" .. url_encode(pair[2])
  end
  return table.concat(encoded, "&")
end

-- request() must not advance the walk: wrk calls it once more on the first thread to check it
function request()
  started = now_us()
  sent = kind
  if kind == "next" then
    return wrk.format("GET", session .. "/next", { ["Cookie"] = cookies() })
  elseif kind == "page" then
    return wrk.format("GET", path, { ["Cookie"] = cookies() })
  end
  return wrk.format("POST", path, {
    ["Cookie"] = cookies(),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, answer_form(rounds))
end

function response(status, headers, body)
  local took = string.format("%.0f ", now_us() - started)
  local failed = status ~= EXPECTED[sent]
  if failed and first_failure == "" then
    first_failure = string.format("%s answered %d: %s", sent, status, string.sub(body, 1, 300))
  end
  if sent == "page" then
    page_us = page_us .. took
    page_failed = page_failed + (failed and 1 or 0)
  elseif sent == "submit" then
    submit_us = submit_us .. took
    submit_failed = submit_failed + (failed and 1 or 0)
    rounds = rounds + 1
  else
    next_us = next_us .. took
    next_failed = next_failed + (failed and 1 or 0)
  end
  local set_cookie = headers["set-cookie"] or headers["Set-Cookie"]
  if set_cookie then
    wrote = string.match(set_cookie, "fp_wrote=([^;]+)") or wrote
  end
  if sent == "page" then
    kind = failed and "next" or "submit"
    return
  end
  local location = headers["location"] or headers["Location"] or ""
  if string.find(location, "/items/", 1, true) then
    path, kind, misses = location, "page", 0
  else
    -- back to the queue: nothing free now; ask again (others' reservations end) and then stop
    misses, kind = misses + 1, "next"
    if misses >= MAX_MISSES then
      wrk.thread:stop()
    end
  end
end

-- a reviewer told nothing is left waits a little before asking again
function delay()
  if kind == "next" and misses > 0 then
    return 300
  end
  return 0
end

local function percentile(sorted, q)
  local index = math.floor(q * (#sorted - 1) + 0.5) + 1
  return sorted[math.min(#sorted, index)]
end

function done(summary, latency, requests)
  local merged = { page = {}, submit = {}, next = {} }
  local failed = { page = 0, submit = 0, next = 0 }
  local failure = ""
  for _, thread in ipairs(threads) do
    for name, list in pairs(merged) do
      for _, value in ipairs(split(thread:get(name .. "_us"), " ")) do
        list[#list + 1] = tonumber(value)
      end
      failed[name] = failed[name] + thread:get(name .. "_failed")
    end
    if failure == "" then
      failure = thread:get("first_failure")
    end
  end
  io.write(string.format("review_app seconds %.3f\n", summary.duration / 1000000))
  for _, name in ipairs({ "next", "page", "submit" }) do
    local list = merged[name]
    table.sort(list)
    if #list > 0 then
      io.write(string.format("review_app %s count %d failed %d p50_us %.0f p95_us %.0f max_us %.0f\n",
        name, #list, failed[name], percentile(list, 0.5), percentile(list, 0.95), list[#list]))
    else
      io.write(string.format("review_app %s count 0 failed %d\n", name, failed[name]))
    end
  end
  if failure ~= "" then
    io.write("review_app failure " .. string.gsub(failure, "\n", " ") .. "\n")
  end
end
