-- Bench: what a sandbox request costs as the simulated world grows. The same by-id requests
-- (a Build package, a v1 environment, a v4 environment, a Backups snapshot, a v1 start job's
-- status) against a world of N apps, N packages in one app and N snapshots of one environment.
-- Usage: mxdeploy bench/sandbox_scale.lua [N ...]   (default: 10 100000)
-- Prints the median time per request for each N and the ratio to the smallest world; the goal
-- is "the same": at most 1.5x.
local B = dofile((arg[0]:match("^(.*/)") or "./") .. "lib.lua")
local core = require("mxdeploy.core")
local sizes = {}
for i = 1, #arg do sizes[#sizes + 1] = tonumber(arg[i]) end
if #sizes == 0 then sizes = { 10, 100000 } end
local REQUESTS = tonumber(os.getenv("SANDBOX_SCALE_REQUESTS")) or 400 -- per kind and size

-- A seed (loaded by the sandbox in an empty environment: no library calls) with n of each.
local function seed_text(n)
  return ([[
local N = %d
local apps, pkgs, snaps = {}, {}, {}
for i = 1, N do
  pkgs[i] = { PackageId = "pkg-" .. i, Name = "p" .. i .. ".mda", Version = "1.0.0." .. i, Status = "Succeeded",
    CreationDate = 1404739654045, Size = 1000, MendixVersion = "9.24.0.2965" }
  snaps[i] = { snapshot_id = "snap-" .. i, state = "completed", created_at = "2026-01-01T00:00:00.000Z",
    finished_at = "2026-01-01T00:00:00.000Z", expires_at = "2026-04-01T00:00:00.000Z" }
end
apps[1] = { AppId = "calc", ProjectId = "project-calc", Name = "Calc", licenseType = "licensed",
  members = { "bench@example.com" }, packages = pkgs,
  environments = {
    { Mode = "Test", EnvironmentId = "env-calc-test", Status = "Stopped", PackageId = "pkg-1", Url = "https://t" },
    { Mode = "Production", EnvironmentId = "env-calc-prod", Status = "Running", PackageId = "pkg-1", Url = "https://p",
      snapshots = snaps } } }
for i = 2, N do
  apps[i] = { AppId = "app" .. i, ProjectId = "project-" .. i, Name = "App " .. i, licenseType = "licensed",
    members = { "bench@example.com" }, packages = {},
    environments = { { Mode = "Test", EnvironmentId = "env-" .. i, Status = "Stopped", Url = "https://x" } } }
end
return {
  users = { { username = "bench@example.com", apikey = "bench-apikey-0000", name = "Bench", can_deploy = true } },
  tokens = { { token = "bench-pat-rw", user = "bench@example.com", scopes = { "mx:deployment:read", "mx:deployment:write" } } },
  credentials = { username = "bench@example.com", apikey = "bench-apikey-0000", token = "bench-pat-rw", readonly_token = "bench-pat-rw" },
  apps = apps,
}]]):format(n)
end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function measure(n)
  local seed = os.tmpname()
  local f = assert(io.open(seed, "w"))
  f:write(seed_text(n))
  f:close()
  local sb = require("mxdeploy.sandboxctl").start{ time_scale = 1000, seed = seed }
  os.remove(seed)
  local key = { ["Mendix-Username"] = "bench@example.com", ["Mendix-ApiKey"] = "bench-apikey-0000" }
  local pat = { Authorization = "MxToken bench-pat-rw" }
  local last = math.max(n, 2)
  local v1, v2, v4 = sb.bases["deploy-v1"], sb.bases["deploy-v2"], sb.bases["deploy-v4"]
  local start = core.http{ method = "POST", url = v1 .. "/apps/calc/environments/Test/start", headers = key,
    body = "{}" }
  local job = require("mxdeploy.json").decode(start.body).JobId
  local kinds = {
    { "Build package by id", v1 .. "/apps/calc/packages/pkg-" .. n, key },
    { "v1 environment of app N", v1 .. "/apps/app" .. last .. "/environments/Test", key },
    { "v4 environment of app N", v4 .. "/apps/project-" .. last .. "/environments/env-" .. last, pat },
    { "Backups snapshot by id", v2 .. "/apps/project-calc/environments/env-calc-prod/snapshots/snap-" .. n, key },
    { "v1 start job status", v1 .. "/apps/calc/environments/Test/start/" .. job, key },
  }
  local out = {}
  for _, k in ipairs(kinds) do
    local times = {}
    for i = 1, REQUESTS do
      local t0 = core.now()
      local r = core.http{ url = k[2], headers = k[3] }
      times[i] = core.now() - t0
      assert(r.status < 400 or n < 2, k[1] .. ": HTTP " .. r.status .. " " .. tostring(r.body))
    end
    out[k[1]] = median(times)
  end
  sb:stop()
  return out, kinds
end

local base
for _, n in ipairs(sizes) do
  local res, kinds = measure(n)
  base = base or res
  for _, k in ipairs(kinds) do
    local us = res[k[1]] * 1e6
    local ratio = res[k[1]] / base[k[1]]
    B.row(("sandbox N=%d"):format(n), k[1], ("%.0f us (%.2fx N=%d)"):format(us, ratio, sizes[1]),
      "<= 1.5x", n == sizes[1] or ratio <= 1.5)
  end
end
