-- wrk script: cycles through pre-signed /twilio/voice bodies (bench/sign_bodies.mjs).
--   [VOICE_ADDRS=HOST:PORT,HOST:PORT...] wrk ... -s bench/voice.lua URL -- BODIES
-- With a list of addresses (bench/voice.sh INSTANCES=n), thread k connects to address k mod n
-- (run as many threads as addresses, -t n) and takes every n-th body from k on, so no two
-- threads send the same CallSid; wrk sums the threads' requests and merges their latencies.
local reqs = {}
local i = 0
local threads = 0

-- (an environment variable: setup() runs in wrk's main state, which never sees the script's
-- arguments)
function setup(thread)
  local addrs = os.getenv("VOICE_ADDRS")
  if addrs == nil or addrs == "" then return end
  local list = {}
  for hp in addrs:gmatch("[^,]+") do list[#list + 1] = hp end
  local host, port = list[threads % #list + 1]:match("^(.*):(%d+)$")
  thread.addr = wrk.lookup(host, port)[1]
  thread:set("part", threads % #list)
  thread:set("parts", #list)
  threads = threads + 1
end

function init(args)
  local n = 0
  local mine_k, mine_n = part or 0, parts or 1
  for line in io.lines(args[1]) do
    if n % mine_n == mine_k then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", "/twilio/voice", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig,
      }, body)
    end
    n = n + 1
  end
  -- each wrk thread starts at a different offset so CallSids stay unique across threads
  i = math.random(#reqs)
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
