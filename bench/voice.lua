-- wrk script: cycles through pre-signed /twilio/voice bodies (bench/sign_bodies.mjs).
local reqs = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("POST", "/twilio/voice", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = sig,
    }, body)
  end
  -- each wrk thread starts at a different offset so CallSids stay unique across threads
  i = math.random(#reqs)
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end
