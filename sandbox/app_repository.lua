-- App Repository API (personal access token, scope mx:modelrepository:repo:read), mounted at
-- /repository/v1: repository info, branches and commits (newest first) with cursor pagination
-- (cursors first/prev/next/last; no `next` on the last page). Branch names arrive URL-encoded
-- in the path (branches%2Fdevelopment). Errors are {"errorCode": "RS404", "errorMessage": ...}.
local U = require("mxdeploy.sandbox.util")
local E = U.mx_error

local M = {}

-- A deterministic 40-hex-digit commit id.
local function hash(seed, n)
  local h = 2166136261
  for c in (seed .. "#" .. n):gmatch(".") do h = ((h ~ c:byte()) * 16777619) & 0xffffffff end
  return ("%08x%08x%08x%08x%08x"):format(h, (h * 31 + n) & 0xffffffff, (h ~ 0x5bd1e995) & 0xffffffff,
    (h * 7 + 13) & 0xffffffff, (n * 2654435761) & 0xffffffff)
end

local function commits(branch, count, t0)
  local list = U.array()
  for i = count, 1, -1 do -- newest first
    list[#list + 1] = { id = hash(branch, i), author = { name = "Sandbox User", email = "sandbox@example.com" },
      date = U.iso(t0 + i * 3600):gsub("%.%d+Z$", ".000Z"), message = ("%s: change %d"):format(branch, i),
      mendixVersion = "9.24.0.2965", relatedStories = U.array() }
  end
  return list
end

-- Every app of the seed gets a git repository: main with 45 commits (three pages of 20), and
-- branches/development with 3.
function M.prepare(w, seed)
  if w.repositories then return end
  w.repositories = U.copy(seed.repositories or {})
  for _, a in ipairs(w.apps or {}) do
    if a.ProjectId and not w.repositories[a.ProjectId] then
      w.repositories[a.ProjectId] = {
        type = "git", url = "https://git.api.mendix.com/" .. a.ProjectId .. ".git",
        branches = U.array{ { name = "main", commits = commits("main", 45, 1700000000) },
                            { name = "branches/development", commits = commits("development", 3, 1700100000) } },
      }
    end
  end
end

local function repo_of(ctx, id)
  local a = ctx.ix:get("project", id)
  local r = a and U.member(a, ctx.user) and ctx.world.repositories[id]
  if r then return r, a end
  if not id:match("^%x+%-%x+%-%x+%-%x+%-%x+$") then
    return nil, E(400, "RS400", "Please provide valid input to execute this request. Invalid app id")
  end
  return nil, E(404, "RS404", "Repository not found")
end

local NEEDS = {
  repo = function(ctx, p) return repo_of(ctx, p.appId) end,
  branch = function(ctx, p)
    local r, err = repo_of(ctx, p.appId)
    if not r then return nil, err end
    for _, b in ipairs(r.branches) do
      if b.name == p.branchName then return b, r end
    end
    return nil, E(404, "RS404", "Branch not found")
  end,
}

-- One page of `list` by the query's limit (default 20, at most 100) and cursor.
local function page(ctx, list, field, map)
  local q = ctx.q
  local limit = tonumber(q.limit or "20")
  if not limit or limit < 1 or limit > 100 or limit ~= math.floor(limit) then
    return nil, E(400, "RS400", "Please provide valid input to execute this request. Invalid limit")
  end
  local function cursor(offset) return "o-" .. offset end
  local offset = 0
  if q.cursor and q.cursor ~= "" then
    offset = tonumber(q.cursor:match("^o%-(%d+)$") or "")
    if not offset then return nil, E(400, "RS400", "Please provide valid input to execute this request. Invalid cursor") end
  end
  local items = U.array()
  for i = offset + 1, math.min(offset + limit, #list) do items[#items + 1] = map(list[i]) end
  local last = math.max(0, (math.ceil(#list / limit) - 1) * limit)
  local cursors = { first = cursor(0), last = cursor(last) }
  if offset > 0 then cursors.prev = cursor(math.max(0, offset - limit)) end
  if offset + limit < #list then cursors.next = cursor(offset + limit) end
  return { [field] = items, cursors = cursors }
end

local function branch_json(b)
  return { name = b.name, latestCommit = U.copy(b.commits[1]) }
end

function M.routes(r)
  local add = r.with(NEEDS)

  add("GET", "/repositories/{appId}/info", { needs = "repo" }, function(_, p, repo)
    return U.ok({ appId = p.appId, type = repo.type, url = repo.url })
  end)

  add("GET", "/repositories/{appId}/branches", { needs = "repo" }, function(ctx, _, repo)
    local body, err = page(ctx, repo.branches, "items", branch_json)
    return body and U.ok(body) or err
  end)

  add("GET", "/repositories/{appId}/branches/{branchName}", { needs = "branch" }, function(_, _, b)
    return U.ok(branch_json(b))
  end)

  add("GET", "/repositories/{appId}/branches/{branchName}/commits", { needs = "branch" }, function(ctx, _, b)
    local body, err = page(ctx, b.commits, "items", U.copy)
    return body and U.ok(body) or err
  end)
end

return M
