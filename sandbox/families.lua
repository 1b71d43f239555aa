-- The API families the sandbox serves, one line each: where the family is mounted, how it
-- authenticates ("apikey": Mendix-Username/Mendix-ApiKey; "token": Authorization: MxToken) and
-- the module (sandbox/<module>.lua) that serves it. Families may share a mount point.
--
-- A module exports routes(r) (r.with(NEEDS) gives its `add`, see router.lua), and optionally
-- prepare(world, seed) (fill in the seed's defaults) and settle(ctx) (apply what finished by
-- itself; called before every request, so it must cost nothing while nothing is due).
-- `title` names the family in `mxdeploy sandbox`'s banner (app:families()).
-- Adding an API: write sandbox/<module>.lua and add its line here (nothing in the host). Token families may name their
-- PAT scopes (read = for GET, write = for the rest; default mx:deployment:read/write) and
-- errors = "mx" when their errors are {"errorCode", "errorMessage"} (else {"error": {...}}).
return {
  { api = "deploy-v1", title = "Deploy API v1", prefix = "/deploy/api/1", auth = "apikey", module = "deploy_v1" },
  { api = "build-v1", title = "Build API", prefix = "/deploy/api/1", auth = "apikey", module = "build" },
  { api = "deploy-v2", title = "Deploy API v2", prefix = "/deploy/api/v2", auth = "apikey", module = "deploy_v2" },
  { api = "backups-v2", title = "Backups API v2", prefix = "/deploy/api/v2", auth = "apikey", module = "backups" },
  { api = "deploy-v4", title = "Deploy API v4", prefix = "/cloud/api/v4", auth = "token", module = "deploy_v4" },
  { api = "pc-jobs", title = "Private Cloud jobs", prefix = "/privatecloud/api/v4", auth = "token", module = "pc_jobs" },
  { api = "pc-deploy", title = "Private Cloud Deploy", prefix = "/privatecloud/api/v4", auth = "token", module = "pc_deploy" },
  { api = "pc-build", title = "Private Cloud Build", prefix = "/privatecloud/api/v4", auth = "token", module = "pc_build" },
  { api = "pipelines", title = "Pipelines API", prefix = "/pipelines/api/v1", auth = "token", module = "pipelines",
    scopes = { read = "mx:pipelines:read", write = "mx:pipelines:write" } },
  { api = "webhooks", title = "Webhooks API", prefix = "/webhooks/api/v1", auth = "token", module = "webhooks",
    scopes = { read = "mx:webhook:read", write = "mx:webhook:write" } },
  { api = "repository", title = "App Repository API", prefix = "/repository/v1", auth = "token", module = "app_repository",
    scopes = { read = "mx:modelrepository:repo:read" }, errors = "mx" },
}
