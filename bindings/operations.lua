-- mxdeploy.operations: the one table of every Mendix deployment API operation (83, exactly the
-- rows of specs/operations.tsv and specs/operations-newer.tsv). Client functions, argument checks, jobs, `mx.operations()`,
-- `mx.help()` and docs/REFERENCE.md are all generated from it.
--
-- Row fields:
--   ns        namespace on a client: v1, v2, v4, build, backups, pc, pcbuild
--   name      function name (snake_case verb: list_/get_/create_/update_/delete_/set_/start_/...)
--   method    HTTP method; path: path template exactly as operations.tsv writes it
--   params    path parameters in path order (derived from `path`)
--   input     nil | "body" (optional table = JSON body) | "query" (optional table = query params)
--             | "upload" (file path, then options table) | "download" (output path, then query)
--   fields    documented body/query fields: {name, type, required=, doc=}; for "query" inputs
--             these are the only accepted keys
--   completes "now" or "job"; job: how the job is polled (see mxdeploy.jobs)
--   redirect  (downloads) without an output path, return the redirect's Location instead
--   pages     paginated lists: {items=field, style="v4"|"backups"|"pc"|"cursor"} and `each` iterator
--             name; "cursor": `cursor` query parameter, the answer's cursors.next (absent on the last page)
--   summary   one line from the docs; source: where the docs describe it; note: extra facts

local M = {}

-- Namespaces: API label in operations.tsv, path prefix of operations.tsv paths that the base URL
-- already contains, production base URL, authentication scheme.
M.namespaces = {
  { ns = "v1", api = "deploy-v1", title = "Deploy API v1", prefix = "/api/1",
    base = "https://deploy.mendix.com/api/1", auth = "apikey" },
  { ns = "v2", api = "deploy-v2", title = "Deploy API v2", prefix = "/api/v2",
    base = "https://deploy.mendix.com/api/v2", auth = "apikey" },
  { ns = "v4", api = "deploy-v4", title = "Deploy API v4", prefix = "",
    base = "https://cloud.home.mendix.com/api/v4", auth = "token" },
  { ns = "build", api = "build-v1", title = "Build API v1", prefix = "/api/1",
    base = "https://deploy.mendix.com/api/1", auth = "apikey" },
  { ns = "backups", api = "backups-v2", title = "Backups API v2", prefix = "/api/v2",
    base = "https://deploy.mendix.com/api/v2", auth = "apikey" },
  { ns = "pc", api = "pc-deploy", title = "Private Cloud Deploy API", prefix = "",
    base = "https://privatecloud.mendixcloud.com/api/v4", auth = "token" },
  { ns = "pcbuild", api = "pc-build", title = "Private Cloud Build API", prefix = "",
    base = "https://privatecloud.mendixcloud.com/api/v4", auth = "token" },
  { ns = "pipelines", api = "pipelines", title = "Mendix Pipelines API", prefix = "",
    base = "https://pipeline-portal.home.mendix.com/api/v1", auth = "token",
    scopes = "mx:pipelines:read (GET), mx:pipelines:write (start a run)" },
  { ns = "webhooks", api = "webhooks", title = "Webhooks API", prefix = "",
    base = "https://webhook-portal.home.mendix.com/api/v1", auth = "token",
    scopes = "mx:webhook:read (GET), mx:webhook:write (everything)" },
  { ns = "repository", api = "repository", title = "App Repository API", prefix = "",
    base = "https://repository.api.mendix.com/v1", auth = "token",
    scopes = "mx:modelrepository:repo:read" },
}
-- The token scopes of the older PAT APIs (specs/README.md).
for _, n in ipairs(M.namespaces) do
  if n.auth == "token" and not n.scopes then n.scopes = "mx:deployment:read (GET), mx:deployment:write (everything else)" end
end
M.namespace = {}
for _, n in ipairs(M.namespaces) do M.namespace[n.ns] = n end

-- Client-side checks of path parameters, by namespace and parameter name (docs' limits).
-- Each is {rule, explanation}; rules are in mxdeploy.arguments.
M.param_rules = {
  v1 = { Date = "date" },
  v4 = { appId = "uuid", environmentId = "uuid" },
  pc = { appId = "uuid", clusterId = "uuid", namespaceId = "uuid", jobId = "uuid",
         environmentId = "max8", cliVersionValue = "cli_version" },
  pcbuild = { appId = "uuid", packageId = "uuid" },
  pipelines = { appId = "uuid", runId = "uuid" },
  webhooks = { ["app-id"] = "uuid" },
}

-- Client-side checks of the IDs a caller chooses inside a Private Cloud manifest (the spec's
-- formats: clusterId and namespaceId are UUIDs, an environment ID is a string of at most 8
-- characters; nothing stricter than the spec, or a real resource could not be managed).
-- Each entry: a path of field names inside the body, and the rule (mxdeploy.arguments).
local CLUSTER_IDS = { { { "cluster", "clusterId" }, "uuid" } }
local NAMESPACE_IDS = { { { "namespace", "namespaceId" }, "uuid" } }
local ENVIRONMENT_IDS = { { { "environment", "id" }, "max8" },
                          { { "environment", "provider", "clusterId" }, "uuid" },
                          { { "environment", "provider", "namespaceId" }, "uuid" } }
M.body_rules = {
  ["pc.create_cluster"] = CLUSTER_IDS, ["pc.update_cluster"] = CLUSTER_IDS,
  ["pc.create_namespace"] = NAMESPACE_IDS, ["pc.update_namespace"] = NAMESPACE_IDS,
  ["pc.create_environment"] = ENVIRONMENT_IDS, ["pc.update_environment"] = ENVIRONMENT_IDS,
  ["pc.update_namespace_environment"] = ENVIRONMENT_IDS,
  ["webhooks.create_webhook"] = { { { "validationSecret" }, "webhook_secret" }, { { "name" }, "webhook_name" } },
  ["webhooks.update_webhook"] = { { { "validationSecret" }, "webhook_secret" }, { { "name" }, "webhook_name" } },
  ["pipelines.start_run"] = { { { "pipelineId" }, "uuid" } },
}

-- Fields of Private Cloud manifests that the spec declares as arrays (paths inside the body): an
-- empty Lua table there is sent as `[]`, not `{}` (see also fields of type "array").
local CLUSTER_ARRAYS = { { "cluster", "clusterManagers" } }
local NAMESPACE_ARRAYS = { { "namespace", "plans" }, { "namespace", "membership" } }
local ENVIRONMENT_ARRAYS = {
  { "environment", "deployment", "constants" }, { "environment", "deployment", "scheduledEvents" },
  { "environment", "deployment", "appLogLevels" }, { "environment", "network", "outgoingConnectionCertificate" },
  { "environment", "runtime", "environmentVariables" }, { "environment", "runtime", "customRuntimeSettings" },
  { "environment", "annotations" }, { "environment", "services" },
}
M.body_arrays = {
  ["pc.create_cluster"] = CLUSTER_ARRAYS, ["pc.update_cluster"] = CLUSTER_ARRAYS,
  ["pc.create_namespace"] = NAMESPACE_ARRAYS, ["pc.update_namespace"] = NAMESPACE_ARRAYS,
  ["pc.create_environment"] = ENVIRONMENT_ARRAYS, ["pc.update_environment"] = ENVIRONMENT_ARRAYS,
  ["pc.update_namespace_environment"] = ENVIRONMENT_ARRAYS,
}

M.UPLOAD_LIMIT = 1024 * 1024 * 1024 -- 1 GB: Mendix Cloud refuses bigger packages

local V1_START_JOB = { poll = "get_start_status", prefix = 2, id = "JobId", status = "Status",
  done = { Started = true }, failed = {}, pending = { Starting = true }, already_done_codes = { ALREADY_STARTED = true },
  poll_error_fails = true }
local V2_JOB = { poll = "get_job", prefix = 1, id = "JobId", status = "Status",
  done = { Completed = true }, failed = { Failed = true }, pending = { Queued = true, Running = true }, keep = { "PackageId" },
  reason = "ErrorMessage" }
local BUILD_JOB = { poll = "get_package", prefix = 1, id = "PackageId", status = "Status",
  done = { Succeeded = true }, failed = { Failed = true }, pending = { Queued = true, Building = true, Uploading = true } }
local function backups_job(id)
  return { poll = nil, prefix = 2, id = id, status = "state", reason = "status_message",
    done = { completed = true }, failed = { failed = true }, pending = { queued = true, running = true } }
end
-- A Private Cloud job answer carrying an `error` object is failed whatever its status says (the
-- spec's example-job-failed-without-code: "status": "created" plus "error").
local PC_JOB = { poll = "get_job", prefix = 0, id = "id", status = "status", reason = "details",
  done = { finished = true }, failed = { failed = true }, pending = { created = true, running = true },
  error_fails = true }

-- Pipelines: the start answer is the run (id, pipelineName, triggeredBy); its status is polled.
local PIPELINE_JOB = { poll = "get_run_status", prefix = 1, id = "id", status = "status",
  done = { SUCCEEDED = true }, failed = { FAILED = true }, pending = { CREATED = true, RUNNING = true },
  keep = { "id", "pipelineId", "pipelineName", "triggeredBy" } }

local S, N, B, T, A = "string", "number", "boolean", "table", "array"

-- v4 `sort`: the docs require a leading + or - to be sent as %2b / %2d (mxdeploy.client does).
local SORT_DOC = "name, index, +name, -name, +index or -index (sent as %2bname, %2dname)"

M.list = {
  -- Deploy API v1 ------------------------------------------------------------------------------
  { ns = "v1", name = "list_apps", method = "GET", path = "/api/1/apps",
    summary = "Retrieves all apps on Mendix Cloud to which the authenticated user has access as a regular user.",
    source = "docs/deploy-api-1.md#retrieve-apps" },
  { ns = "v1", name = "create_free_app", method = "POST", path = "/api/1/apps", input = "body",
    fields = { { "ProjectId", S, required = true, doc = "Mendix Portal project identifier to link to the new Free App" } },
    summary = "Creates a Free App for a requested project ID.",
    source = "docs/deploy-api-1.md#create-free-app-environment" },
  { ns = "v1", name = "get_app", method = "GET", path = "/api/1/apps/{AppId}",
    summary = "Retrieves a specific app to which the authenticated user has access as a regular user.",
    source = "docs/deploy-api-1.md#retrieve-app" },
  { ns = "v1", name = "list_environments", method = "GET", path = "/api/1/apps/{AppId}/environments",
    summary = "Retrieves all environments that are connected to a specific app.",
    source = "docs/deploy-api-1.md#retrieve-environments" },
  { ns = "v1", name = "get_environment", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}",
    summary = "Retrieves a specific environment that is connected to a specific app.",
    source = "docs/deploy-api-1.md#retrieve-environment" },
  { ns = "v1", name = "start_environment", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/start",
    input = "body", fields = { { "AutoSyncDb", B, doc = "synchronize the database with the model during start" } },
    completes = "job", job = V1_START_JOB,
    summary = "Starts a specific environment; returns a job polled at .../start/{JobId} until Status=Started.",
    note = "ALREADY_STARTED is reported as a job that is already done (job.already_done = true).",
    source = "docs/deploy-api-1.md#start-environment" },
  { ns = "v1", name = "get_start_status", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}/start/{JobId}",
    summary = "Retrieve the status of the start environment action.",
    source = "docs/deploy-api-1.md#get-start-environment-status" },
  { ns = "v1", name = "stop_environment", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/stop",
    summary = "Stops a specific environment that is connected to a specific app.",
    source = "docs/deploy-api-1.md#stop-environment" },
  { ns = "v1", name = "get_environment_package", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}/package",
    input = "query", fields = { { "url", B, doc = "also return a URL pointing to the package file" } },
    summary = "Retrieves the deployed package of a specific environment.",
    source = "docs/deploy-api-1.md#retrieve-environment-package" },
  { ns = "v1", name = "upload_package", method = "POST", path = "/api/1/apps/{AppId}/packages/upload",
    input = "upload", fields = { { "name", S, doc = "package name (default default.mda)" } },
    summary = "Uploads a deployment package (MDA, multipart/form-data, at most 1 GB) to an app.",
    note = "Uploads over 300 MB may time out on v1; prefer v2.upload_package.",
    source = "docs/deploy-api-1.md#upload-package" },
  { ns = "v1", name = "transport_package", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/transport",
    input = "body", fields = { { "PackageId", S, required = true, doc = "package to deploy" } },
    summary = "Transports a deployment package to an environment (which must be stopped).",
    source = "docs/deploy-api-1.md#transport-deployment-package" },
  { ns = "v1", name = "clean_environment", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/clean",
    summary = "Removes all data (files and database records) from a stopped environment.",
    source = "docs/deploy-api-1.md#clean-environment" },
  { ns = "v1", name = "get_environment_settings", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}/settings",
    summary = "Gets the custom runtime settings, constants and scheduled events of an environment.",
    source = "docs/deploy-api-1.md#retrieve-environment-settings" },
  { ns = "v1", name = "set_environment_settings", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/settings",
    input = "body", fields = { { "Constants", A }, { "CustomSettings", A }, { "ScheduledEvents", A } },
    summary = "Changes environment settings (constants, custom settings, scheduled events); applied at the next restart.",
    note = "The body is the collection read with get_environment_settings, changed.",
    source = "docs/deploy-api-1.md#set-environment-settings" },
  { ns = "v1", name = "scale_environment", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/scale",
    input = "body", fields = { { "Instances", N, required = true }, { "MemoryPerInstance", N, required = true, doc = "MB, at least 1024" } },
    summary = "Scale memory and instances of an environment.",
    source = "docs/deploy-api-1.md#scale-environments" },
  { ns = "v1", name = "create_environment_tag", method = "POST", path = "/api/1/apps/{AppId}/environments/{Mode}/tags",
    input = "body", fields = { { "Tag", S, required = true } },
    summary = "Sets a tag on an environment.",
    source = "docs/deploy-api-1.md#create-environment-tags" },
  { ns = "v1", name = "get_environment_tags", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}/tags",
    summary = "Gets current values of environment tags.",
    source = "docs/deploy-api-1.md#retrieve-environment-tags" },
  { ns = "v1", name = "delete_environment_tag", method = "DELETE", path = "/api/1/apps/{AppId}/environments/{Mode}/tags",
    input = "body", fields = { { "Tag", S, required = true } },
    summary = "Deletes an environment tag.",
    source = "docs/deploy-api-1.md#delete-environment-tags" },
  { ns = "v1", name = "get_app_logs", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}/logs/{Date}",
    summary = "Returns the DownloadUrl of the app logs of one date (YYYY-MM-DD).",
    note = "Fetch the DownloadUrl with v1.download_app_logs or mx.download (no credentials are sent to it).",
    source = "docs/deploy-api-1.md#download-app-logs-for-a-specific-date" },
  { ns = "v1", name = "get_access_logs", method = "GET", path = "/api/1/apps/{AppId}/environments/{Mode}/access-logs/{Date}",
    summary = "Returns the DownloadUrl of the log of end-users who started a session on one date (YYYY-MM-DD).",
    note = "Fetch the DownloadUrl with v1.download_access_logs or mx.download (no credentials are sent to it).",
    source = "docs/deploy-api-1.md#download-logs" },

  -- Deploy API v2 ------------------------------------------------------------------------------
  { ns = "v2", name = "upload_package", method = "POST", path = "/api/v2/apps/{AppId}/packages/upload",
    input = "upload", fields = { { "name", S, doc = "package name (default default.mda)" } },
    completes = "job", job = V2_JOB,
    summary = "Uploads a deployment package (at most 1 GB); returns a job whose result carries PackageId.",
    source = "docs/deploy-api-2.md#upload-package" },
  { ns = "v2", name = "get_job", method = "GET", path = "/api/v2/apps/{AppId}/jobs/{JobId}",
    summary = "Find the status of a job (Queued, Running, Completed, Failed).",
    source = "docs/deploy-api-2.md#job-status" },

  -- Deploy API v4 ------------------------------------------------------------------------------
  { ns = "v4", name = "list_apps", method = "GET", path = "/apps", input = "query",
    fields = { { "offset", N }, { "limit", N }, { "licenseType", S, doc = "free or licensed" } },
    pages = { items = "apps", style = "v4" }, each = "each_app",
    summary = "Get list of apps.", source = "deploy-api-v4.openapi.yaml get-apps" },
  { ns = "v4", name = "get_app", method = "GET", path = "/apps/{appId}",
    summary = "Get an app.", source = "deploy-api-v4.openapi.yaml get-app" },
  { ns = "v4", name = "update_app", method = "PATCH", path = "/apps/{appId}", input = "body",
    fields = { { "technicalContact", T, doc = "{userId = email}" } },
    summary = "Change technical contact for an app.", source = "deploy-api-v4.openapi.yaml patch-apps-technicalContact" },
  { ns = "v4", name = "list_environments", method = "GET", path = "/apps/{appId}/environments", input = "query",
    fields = { { "offset", N }, { "limit", N }, { "sort", S, doc = SORT_DOC }, { "expand", S, doc = "only 'package'" } },
    pages = { items = "environments", style = "v4" }, each = "each_environment",
    summary = "Get an array of environments of an app.", source = "deploy-api-v4.openapi.yaml get-app-environments" },
  { ns = "v4", name = "get_environment", method = "GET", path = "/apps/{appId}/environments/{environmentId}", input = "query",
    fields = { { "sort", S, doc = SORT_DOC }, { "expand", S, doc = "only 'package'" } },
    summary = "Get an environment.", source = "deploy-api-v4.openapi.yaml get-environment-details" },
  { ns = "v4", name = "list_environment_permissions", method = "GET", path = "/apps/{appId}/environments/{environmentId}/permissions",
    input = "query", fields = { { "userId", S, doc = "user email address" }, { "offset", N }, { "limit", N } },
    pages = { items = "permissions", style = "v4" }, each = "each_environment_permission",
    summary = "Get an array of permissions to an environment for team members of an app.",
    source = "deploy-api-v4.openapi.yaml get-environment-permissions" },
  { ns = "v4", name = "update_environment_permissions", method = "PATCH", path = "/apps/{appId}/environments/{environmentId}/permissions",
    input = "body", fields = { { "permissions", A, doc = "array of {member = {userId=}, canDeployApp=, ...}" } },
    summary = "Update the list of permissions to an environment for team members of an app.",
    source = "deploy-api-v4.openapi.yaml update-environment-permissions" },

  -- Build API v1 -------------------------------------------------------------------------------
  { ns = "build", name = "list_packages", method = "GET", path = "/api/1/apps/{AppId}/packages",
    summary = "Retrieves all deployment packages of an app.", source = "docs/build-api.md#retrieve-packages" },
  { ns = "build", name = "build_package", method = "POST", path = "/api/1/apps/{AppId}/packages", input = "body",
    fields = { { "Branch", S, required = true }, { "Revision", S, required = true }, { "Version", S, required = true },
               { "Description", S } },
    completes = "job", job = BUILD_JOB,
    summary = "Starts building a deployment package from the team server; a job polled until Succeeded or Failed.",
    source = "docs/build-api.md#start-building-deployment-package" },
  { ns = "build", name = "get_package", method = "GET", path = "/api/1/apps/{AppId}/packages/{PackageId}", input = "query",
    fields = { { "url", B, doc = "also return a URL pointing to the package file" } },
    summary = "Retrieves a specific deployment package of an app.", source = "docs/build-api.md#retrieve-package" },
  { ns = "build", name = "delete_package", method = "DELETE", path = "/api/1/apps/{AppId}/packages/{PackageId}",
    summary = "Deletes a specific deployment package of an app.", source = "docs/build-api.md#delete-package" },
  { ns = "build", name = "download_package", method = "GET", path = "/api/1/apps/{AppId}/packages/{PackageId}/download",
    input = "download",
    summary = "Downloads a deployment package to a file (deprecated: prefer get_package with {url = true}).",
    source = "docs/build-api.md#download-package" },

  -- Backups API v2 -----------------------------------------------------------------------------
  { ns = "backups", name = "list_snapshots", method = "GET", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots",
    input = "query", fields = { { "offset", N }, { "limit", N } },
    pages = { items = "snapshots", style = "backups" }, each = "each_snapshot",
    summary = "Lists the snapshots of an environment (paginated with offset and limit).",
    source = "docs/backups-api-v2.md#list-environment-snapshots" },
  { ns = "backups", name = "create_snapshot", method = "POST", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots",
    input = "body", fields = { { "comment", S } }, completes = "job", job = backups_job("snapshot_id"),
    summary = "Request the creation of a snapshot of an environment; a job polled until completed or failed.",
    source = "docs/backups-api-v2.md#request-creation-snapshot" },
  { ns = "backups", name = "get_snapshot", method = "GET", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots/{SnapshotId}",
    summary = "Check the current status of a snapshot (creation).",
    source = "docs/backups-api-v2.md#request-status-of-creation-of-a-snapshot" },
  { ns = "backups", name = "update_snapshot", method = "PUT", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots/{SnapshotId}",
    input = "body", fields = { { "comment", S, required = true } },
    summary = "Set a new comment for an existing snapshot.", source = "docs/backups-api-v2.md#update-an-existing-snapshot" },
  { ns = "backups", name = "delete_snapshot", method = "DELETE", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots/{SnapshotId}",
    summary = "Delete an existing snapshot.", source = "docs/backups-api-v2.md#delete-an-existing-snapshot" },
  { ns = "backups", name = "create_archive", method = "POST", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots/{SnapshotId}/archives",
    input = "query", fields = { { "data_type", S, doc = "database_only or files_and_database (default)" } },
    completes = "job", job = backups_job("archive_id"),
    summary = "Requests an archive of a snapshot; a job polled until completed, whose result carries the download url.",
    source = "docs/backups-api-v2.md#request-creation-archive" },
  { ns = "backups", name = "get_archive", method = "GET", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/snapshots/{SnapshotId}/archives/{ArchiveId}",
    summary = "Check the progress of an archive creation; a completed archive has a download url.",
    source = "docs/backups-api-v2.md#request-status-archive" },
  { ns = "backups", name = "restore_snapshot", method = "POST", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/restores",
    input = "query", fields = { { "source_snapshot_id", S, required = true }, { "db_only", B, doc = "database only (files are not restored)" } },
    completes = "job", job = backups_job("restore_id"),
    summary = "Restore a snapshot to a stopped environment; a job polled until completed or failed.",
    source = "docs/backups-api-v2.md#request-a-restore-of-a-snapshot-to-an-environment" },
  { ns = "backups", name = "get_restore", method = "GET", path = "/api/v2/apps/{ProjectId}/environments/{EnvironmentId}/restores/{RestoreId}",
    summary = "Check the status of a restore request.",
    source = "docs/backups-api-v2.md#request-status-of-a-snapshot-restore" },

  -- Private Cloud Deploy API -------------------------------------------------------------------
  { ns = "pc", name = "get_job", method = "GET", path = "/jobs/{jobId}",
    summary = "Get the status and result of an asynchronous job.", source = "private-cloud-deploy-api.openapi.yaml get-job" },
  { ns = "pc", name = "list_clusters", method = "GET", path = "/clusters", input = "query",
    fields = { { "offset", N }, { "limit", N } }, pages = { items = "clusters", style = "pc" }, each = "each_cluster",
    summary = "Get manifests of multiple clusters.", source = "private-cloud-deploy-api.openapi.yaml get-clusters-manifests" },
  { ns = "pc", name = "create_cluster", method = "POST", path = "/clusters", input = "body", completes = "job", job = PC_JOB,
    fields = { { "manifestVersion", S }, { "cluster", T } },
    summary = "Create a cluster from a cluster manifest (you choose its UUID).", source = "private-cloud-deploy-api.openapi.yaml create-cluster" },
  { ns = "pc", name = "get_cluster", method = "GET", path = "/clusters/{clusterId}",
    summary = "Get a cluster manifest.", source = "private-cloud-deploy-api.openapi.yaml get-cluster-manifest" },
  { ns = "pc", name = "update_cluster", method = "PUT", path = "/clusters/{clusterId}", input = "body", completes = "job", job = PC_JOB,
    fields = { { "manifestVersion", S }, { "cluster", T } },
    summary = "Update a cluster with a cluster manifest.", source = "private-cloud-deploy-api.openapi.yaml update-cluster" },
  { ns = "pc", name = "delete_cluster", method = "DELETE", path = "/clusters/{clusterId}", completes = "job", job = PC_JOB,
    summary = "Delete a cluster.", source = "private-cloud-deploy-api.openapi.yaml delete-cluster" },
  { ns = "pc", name = "list_namespaces", method = "GET", path = "/clusters/{clusterId}/namespaces", input = "query",
    fields = { { "offset", N }, { "limit", N } }, pages = { items = "namespaces", style = "pc" }, each = "each_namespace",
    summary = "Get manifests of multiple namespaces of a cluster.", source = "private-cloud-deploy-api.openapi.yaml get-namespaces-manifests" },
  { ns = "pc", name = "create_namespace", method = "POST", path = "/clusters/{clusterId}/namespaces", input = "body",
    completes = "job", job = PC_JOB, fields = { { "manifestVersion", S }, { "namespace", T } },
    summary = "Create a namespace in a cluster from a namespace manifest.", source = "private-cloud-deploy-api.openapi.yaml create-namespace" },
  { ns = "pc", name = "get_namespace", method = "GET", path = "/clusters/{clusterId}/namespaces/{namespaceId}",
    summary = "Get a namespace manifest.", source = "private-cloud-deploy-api.openapi.yaml get-namespace-manifest" },
  { ns = "pc", name = "update_namespace", method = "PUT", path = "/clusters/{clusterId}/namespaces/{namespaceId}", input = "body",
    completes = "job", job = PC_JOB, fields = { { "manifestVersion", S }, { "namespace", T } },
    summary = "Update a namespace with a namespace manifest (read-modify-write keeps null and []).",
    source = "private-cloud-deploy-api.openapi.yaml update-manifest" },
  { ns = "pc", name = "delete_namespace", method = "DELETE", path = "/clusters/{clusterId}/namespaces/{namespaceId}",
    completes = "job", job = PC_JOB,
    summary = "Delete a namespace.", source = "private-cloud-deploy-api.openapi.yaml delete-namespace" },
  { ns = "pc", name = "list_apps", method = "GET", path = "/apps", input = "query",
    fields = { { "offset", N }, { "limit", N } }, pages = { items = "apps", style = "pc" }, each = "each_app",
    summary = "Get manifests of multiple applications.", source = "private-cloud-deploy-api.openapi.yaml get-apps-manifests" },
  { ns = "pc", name = "get_app", method = "GET", path = "/apps/{appId}",
    summary = "Get an app manifest.", source = "private-cloud-deploy-api.openapi.yaml get-app-manifest" },
  { ns = "pc", name = "list_environments", method = "GET", path = "/apps/{appId}/environments", input = "query",
    fields = { { "offset", N }, { "limit", N } }, pages = { items = "environments", style = "pc" }, each = "each_environment",
    summary = "Get manifests of multiple environments of an app.", source = "private-cloud-deploy-api.openapi.yaml get-environments-manifests" },
  { ns = "pc", name = "create_environment", method = "POST", path = "/apps/{appId}/environments", input = "body",
    completes = "job", job = PC_JOB, fields = { { "manifestVersion", S }, { "environment", T } },
    summary = "Create an environment from an environment manifest (you choose its ID: at most 8 characters).",
    source = "private-cloud-deploy-api.openapi.yaml create-environment" },
  { ns = "pc", name = "get_environment", method = "GET", path = "/apps/{appId}/environments/{environmentId}",
    summary = "Get an environment manifest (deprecated: use get_namespace_environment).",
    source = "private-cloud-deploy-api.openapi.yaml get-environment-manifest" },
  { ns = "pc", name = "update_environment", method = "PUT", path = "/apps/{appId}/environments/{environmentId}", input = "body",
    completes = "job", job = PC_JOB, fields = { { "manifestVersion", S }, { "environment", T } },
    summary = "Update an environment with an environment manifest (deprecated: use update_namespace_environment).",
    source = "private-cloud-deploy-api.openapi.yaml update-environment" },
  { ns = "pc", name = "delete_environment", method = "DELETE", path = "/apps/{appId}/environments/{environmentId}",
    completes = "job", job = PC_JOB,
    summary = "Delete an environment (deprecated: use delete_namespace_environment).",
    source = "private-cloud-deploy-api.openapi.yaml delete-environment" },
  { ns = "pc", name = "get_namespace_environment", plain = { namespaceId = true }, method = "GET", path = "/apps/{appId}/namespaces/{namespaceId}/environments/{environmentId}",
    summary = "Get the manifest of an environment in a specified namespace.",
    source = "private-cloud-deploy-api.openapi.yaml get-environment-manifest-for-namespace" },
  { ns = "pc", name = "update_namespace_environment", plain = { namespaceId = true }, method = "PUT", path = "/apps/{appId}/namespaces/{namespaceId}/environments/{environmentId}",
    input = "body", completes = "job", job = PC_JOB, fields = { { "manifestVersion", S }, { "environment", T } },
    summary = "Update an environment in a specified namespace with an environment manifest.",
    source = "private-cloud-deploy-api.openapi.yaml update-environment-for-a-specified-namespace" },
  { ns = "pc", name = "delete_namespace_environment", plain = { namespaceId = true }, method = "DELETE", path = "/apps/{appId}/namespaces/{namespaceId}/environments/{environmentId}",
    completes = "job", job = PC_JOB,
    summary = "Delete an environment in a specified namespace.",
    source = "private-cloud-deploy-api.openapi.yaml delete-environment-for-a-specified-namespace" },
  { ns = "pc", name = "list_cli_versions", method = "GET", path = "/cli",
    summary = "Get the list of available versions of mxpc-cli.", source = "private-cloud-deploy-api.openapi.yaml get-cli-versions" },
  { ns = "pc", name = "download_cli", method = "POST", path = "/cli/{cliVersionValue}", input = "download",
    redirect = true,
    fields = { { "os", S, required = true, doc = "windows, linux or macos" }, { "architecture", S, required = true, doc = "x86 or arm" } },
    summary = "Download mxpc-cli: answers 303 to the file, followed without credentials.",
    note = "With an output path the 303 is followed (credentials are not sent to the file's host); without one the call returns the Location URL (fetch it with mx.download).",
    source = "private-cloud-deploy-api.openapi.yaml get-cli" },

  -- Private Cloud Build API --------------------------------------------------------------------
  { ns = "pcbuild", name = "get_job", method = "GET", path = "/jobs/{jobId}", input = "query",
    fields = { { "log", B, doc = "include the job log" } },
    summary = "Get the status and result of an asynchronous job.", source = "private-cloud-build-api.openapi.yaml get-job" },
  { ns = "pcbuild", name = "list_packages", method = "GET", path = "/apps/{appId}/packages", input = "query",
    fields = { { "offset", N }, { "limit", N, doc = "1 to 50" } }, pages = { items = "packages", style = "pc" }, each = "each_package",
    summary = "Retrieve the list of deployment packages of an app.", source = "private-cloud-build-api.openapi.yaml get-packages" },
  { ns = "pcbuild", name = "upload_package", method = "POST", path = "/apps/{appId}/packages", input = "upload",
    fields = { { "fileName", S, doc = "defaults to the file's base name" } }, completes = "job", job = PC_JOB,
    summary = "Create a deployment package by uploading an .mda file; the finished job carries packageId.",
    source = "private-cloud-build-api.openapi.yaml upload-package" },
  { ns = "pcbuild", name = "build_package", method = "POST", path = "/apps/{appId}/packages/build", input = "body",
    fields = { { "branch", S, required = true }, { "revision", S, required = true }, { "description", S }, { "version", S, doc = "x.y.z" } },
    completes = "job", job = PC_JOB,
    summary = "Build a deployment package for a branch and revision; the finished job carries packageId.",
    source = "private-cloud-build-api.openapi.yaml build-package" },
  { ns = "pcbuild", name = "get_package", method = "GET", path = "/apps/{appId}/packages/{packageId}", input = "query",
    fields = { { "url", B, doc = "include a download URL" }, { "log", B, doc = "include the build log" } },
    summary = "Retrieve a deployment package.", source = "private-cloud-build-api.openapi.yaml get-package" },
  { ns = "pcbuild", name = "delete_package", method = "DELETE", path = "/apps/{appId}/packages/{packageId}",
    completes = "job", job = PC_JOB,
    summary = "Delete a deployment package.", source = "private-cloud-build-api.openapi.yaml delete-package" },

  -- Mendix Pipelines API -----------------------------------------------------------------------
  { ns = "pipelines", name = "start_run", method = "POST", path = "/apps/{appId}/runs", input = "body",
    fields = { { "pipelineId", S, required = true, doc = "UUID of a saved and activated pipeline design" } },
    completes = "job", job = PIPELINE_JOB,
    summary = "Start a new run of a saved and activated pipeline; a job polled until SUCCEEDED or FAILED.",
    note = "job.run is the started run (id, pipelineId, pipelineName, triggeredBy.email); the result keeps them.",
    source = "pipelines-api.openapi.yaml startRun" },
  { ns = "pipelines", name = "get_run_status", method = "GET", path = "/apps/{appId}/runs/{runId}/status",
    summary = "Get the status of a pipeline run (CREATED, RUNNING, SUCCEEDED, FAILED).",
    source = "pipelines-api.openapi.yaml getRunStatus" },

  -- Webhooks API -------------------------------------------------------------------------------
  { ns = "webhooks", name = "list_webhooks", method = "GET", path = "/apps/{app-id}/webhooks", input = "query",
    fields = { { "cursor", S, doc = "from cursors.next of the previous page" }, { "limit", N },
               { "ascOrder", B, doc = "ascending by creation time" } },
    pages = { items = "webhooks", style = "cursor" }, each = "each_webhook",
    summary = "Get the webhooks of an app (cursor pagination).", source = "webhooks-api.openapi.yaml get-webhooks" },
  { ns = "webhooks", name = "create_webhook", method = "POST", path = "/apps/{app-id}/webhooks", input = "body",
    fields = { { "name", S, required = true, doc = "letters, digits, _ and space" }, { "url", S, required = true },
               { "eventTypes", A, required = true, doc = "e.g. {'package.uploaded', 'teamserver.push'}" },
               { "isActive", B, required = true }, { "validationSecret", S, required = true, doc = "^(whsec_)?[a-zA-Z0-9+/=]{32,100}$" },
               { "headers", A, doc = "array of {key =, value =}" } },
    summary = "Create a webhook; the answer carries its id and validationSecret.",
    source = "webhooks-api.openapi.yaml create-webhook" },
  { ns = "webhooks", name = "get_webhook", method = "GET", path = "/apps/{app-id}/webhooks/{webhook-id}",
    summary = "Get all details of a webhook.", source = "webhooks-api.openapi.yaml get-webhook-details" },
  { ns = "webhooks", name = "update_webhook", method = "PUT", path = "/apps/{app-id}/webhooks/{webhook-id}", input = "body",
    fields = { { "name", S, required = true }, { "url", S, required = true }, { "eventTypes", A, required = true },
               { "isActive", B, required = true }, { "validationSecret", S, required = true }, { "headers", A } },
    summary = "Update a webhook (answers 202 with the webhook).", source = "webhooks-api.openapi.yaml update-webhook" },
  { ns = "webhooks", name = "delete_webhook", method = "DELETE", path = "/apps/{app-id}/webhooks/{webhook-id}",
    summary = "Delete a webhook.", source = "webhooks-api.openapi.yaml delete-webhook" },

  -- App Repository API -------------------------------------------------------------------------
  { ns = "repository", name = "get_info", method = "GET", path = "/repositories/{appId}/info",
    summary = "Get the repository information of an app (type svn or git, url).",
    source = "docs/app-repository-api.md#retrieve-repository-info" },
  { ns = "repository", name = "list_branches", method = "GET", path = "/repositories/{appId}/branches", input = "query",
    fields = { { "limit", N, doc = "default 20, at most 100" }, { "cursor", S } },
    pages = { items = "items", style = "cursor" }, each = "each_branch",
    summary = "Get the branches of a repository (cursor pagination).",
    source = "docs/app-repository-api.md#retrieve-branches" },
  { ns = "repository", name = "get_branch", method = "GET", path = "/repositories/{appId}/branches/{branchName}",
    summary = "Get a branch and its latest commit (the name is URL-encoded: branches/x goes out as branches%2Fx).",
    source = "docs/app-repository-api.md#retrieve-branch" },
  { ns = "repository", name = "list_commits", method = "GET", path = "/repositories/{appId}/branches/{branchName}/commits",
    input = "query", fields = { { "limit", N, doc = "default 20, at most 100" }, { "cursor", S } },
    pages = { items = "items", style = "cursor" }, each = "each_commit",
    summary = "Get the commits of a branch, newest first (cursor pagination).",
    source = "docs/app-repository-api.md#retrieve-commits" },
}

-- Derived fields.
M.by_name = {}
for _, op in ipairs(M.list) do
  op.completes = op.completes or "now"
  op.params = {}
  for p in op.path:gmatch("{([%w%-]+)}") do op.params[#op.params + 1] = p end
  local nsinfo = M.namespace[op.ns]
  op.api = nsinfo.api
  op.auth = nsinfo.auth
  op.route = op.path:sub(#nsinfo.prefix + 1)
  op.full_name = op.ns .. "." .. op.name
  op.idempotent = op.method == "GET" or op.method == "PUT" or op.method == "DELETE" or op.method == "HEAD"
  op.rules = {}
  for _, p in ipairs(op.params) do
    -- `plain`: the spec has a plain string there (e.g. namespaceId under /apps/{appId}/namespaces)
    op.rules[p] = not (op.plain and op.plain[p]) and (M.param_rules[op.ns] or {})[p] or nil
  end
  for _, f in ipairs(op.fields or {}) do f.name, f.type = f[1], f[2] end
  op.body_rules = M.body_rules[op.full_name]
  -- paths inside the body that the docs declare as arrays (encoded `[]` when empty)
  op.array_paths = {}
  if op.input == "body" then
    for _, f in ipairs(op.fields or {}) do
      if f.type == "array" then op.array_paths[#op.array_paths + 1] = { f.name } end
    end
  end
  for _, path in ipairs(M.body_arrays[op.full_name] or {}) do op.array_paths[#op.array_paths + 1] = path end
  M.by_name[op.full_name] = op
end
-- Backups jobs poll the get_ operation named after the resource.
M.by_name["backups.create_snapshot"].job.poll = "get_snapshot"
M.by_name["backups.create_archive"].job.poll = "get_archive"
M.by_name["backups.create_archive"].job.prefix = 3
M.by_name["backups.restore_snapshot"].job.poll = "get_restore"

--- One record per operation (copies): namespace, name, method, path, completes, params, summary.
function M.records()
  local out = {}
  for _, op in ipairs(M.list) do
    out[#out + 1] = {
      namespace = op.ns, name = op.name, full_name = op.full_name, method = op.method, path = op.path,
      completes = op.completes, params = { table.unpack(op.params) }, input = op.input,
      paginated = op.pages ~= nil, iterator = op.each, summary = op.summary, source = op.source,
      api = op.api, auth = op.auth,
    }
  end
  return out
end

return M
