-- Test helpers around an in-process sandbox (mxdeploy.sandboxctl) and raw HTTP (mxdeploy.core).
--
--   local S = require("sandbox")
--   local sb = S.start{time_scale = 0.001}            -- sandboxctl object
--   local c = S.client(sb)                             -- c.v1/c.v2/c.v4/c.pc(method, path, body, opts)
--   local status, data, resp = c.v1("GET", "/apps")   -- data = decoded JSON (or nil)
--   S.eventually(function() return cond end, 5)        -- polls until true (bounded)
--   S.last_request(sb [, pred])                        -- the newest logged request (matching pred)
local core = require("mxdeploy.core")
local json = require("mxdeploy.json")
local ctl = require("mxdeploy.sandboxctl")
local P = require("process")

local S = {}
S.json = json
S.core = core

S.APP = "calc"
S.PROJECT = "c533ee0b-f7db-4e62-868b-1192d392ccec"
S.ENV_TEST = "22064f8f-ee55-438c-9ab2-182f2f8e5f2f"
S.ENV_ACC = "cd5fc610-edb0-43c5-a374-0439a6411ace"
S.ENV_PROD = "867c9f56-84ec-438b-b1ae-9f9c50377cba"
S.CLUSTER = "42dec69c-9bdb-4918-a979-716fbbe3b8a6"
S.NAMESPACE = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0"
S.PKG1 = "4ee10492-6cfc-4582-b825-a9040c0988ad"
S.PKG2 = "b3d14e53-2654-4534-b374-9179a69ef3cf"
S.PKG_FAILED = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e001"
S.PKG_UPLOADING = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e002"

function S.start(opts)
  return ctl.start(opts or { time_scale = 0.001 })
end

local function decode(body)
  if not body or body == "" then return nil end
  local ok, v = pcall(json.decode, body)
  if ok then return v end
  return nil
end
S.decode = decode

-- One raw exchange; returns status, decoded body, resp (or nil, nil, nil, err).
function S.request(req)
  req.timeout = req.timeout or 30
  local resp, err = core.http(req)
  if not resp then return nil, nil, nil, err end
  return resp.status, decode(resp.body), resp
end

function S.client(sb, who)
  who = who or {}
  local function apikey_headers()
    return { ["Mendix-Username"] = who.username or sb.username, ["Mendix-ApiKey"] = who.apikey or sb.apikey }
  end
  local function call(base, hdrs)
    return function(method, path, body, opts)
      opts = opts or {}
      local h = opts.headers or hdrs()
      local req = { method = method, url = sb.bases[base] .. path, headers = h, timeout = opts.timeout }
      if type(body) == "table" then
        req.body = json.encode(body)
        h["Content-Type"] = "application/json"
      elseif type(body) == "string" then
        req.body = body
        h["Content-Type"] = "application/json"
      end
      if opts.file then req.file, req.form = opts.file, opts.form end
      return S.request(req)
    end
  end
  local function token_headers()
    return { Authorization = "MxToken " .. (who.token or sb.token) }
  end
  return {
    v1 = call("deploy-v1", apikey_headers),
    v2 = call("deploy-v2", apikey_headers),
    v4 = call("deploy-v4", token_headers),
    pc = call("pc-deploy", token_headers),
  }
end

function S.eventually(fn, timeout)
  local deadline = core.now() + (timeout or 5)
  while core.now() < deadline do
    local v = fn()
    if v then return v end
    core.sleep(0.01)
  end
  return fn()
end

S.tmpfile = P.tmpfile

-- Starts `mxdeploy sandbox --port 0 --time-scale 0.001 ARGS` (standalone, another process); returns
-- its pid, its base URL (http://127.0.0.1:PORT) and its banner. stop_served(pid) ends it (bounded).
function S.serve(args)
  local pid, out = P.spawn(("%s sandbox --port 0 --time-scale 0.001 %s"):format(P.quote(P.BIN), args))
  local text = S.eventually(function()
    local t = P.slurp(out)
    return t:find("Authorization:", 1, true) and t
  end, 10)
  os.remove(out)
  assert(text, "mxdeploy sandbox printed no banner")
  return pid, text:match("(http://127%.0%.0%.1:%d+)/deploy/api/1"), text
end

function S.stop_served(pid)
  P.kill(pid, "TERM")
  assert(S.eventually(function() return not P.alive(pid) end, 10), "mxdeploy sandbox did not stop")
end

-- How many requests in the sandbox's log match: count(sb, pred) or count(sb, METHOD, path).
function S.count(sb, method_or_pred, path)
  local pred = method_or_pred
  if type(pred) ~= "function" then
    pred = function(r) return r.method == method_or_pred and r.path == path end
  end
  local n = 0
  for _, r in ipairs(sb:requests()) do
    if pred(r) then n = n + 1 end
  end
  return n
end

function S.last_request(sb, pred)
  local found
  for _, r in ipairs(sb:requests()) do
    if not pred or pred(r) then found = r end
  end
  return found
end

return S
