-- The documented error codes of the API-key APIs (from the error tables in the docs pages), for
-- faults of the form {route=..., error="CODE"} and for failed v1 start jobs. Most of these are also
-- produced naturally by the routes (see apikey.lua); this table makes every one reachable.
local M = {}

local C = {
  -- Deploy API v1
  INVALID_PROJECTID = { 400, "Invalid ProjectId" },
  APPLICATION_ALREADY_EXISTS = { 400, "Application already exists" },
  INVALID_APPID = { 400, "Invalid AppId" },
  APP_NOT_FOUND = { 404, "App not found" },
  INVALID_PARAMETERS = { 400, "Not enough parameters given. Please set AppId and Mode parameters." },
  INVALID_ENVIRONMENT = { 400, "Could not parse environment mode 'mode'. Valid options are Test, Acceptance, Production or the name of a flexible environment." },
  ENVIRONMENT_NOT_FOUND = { 404, "Environment not found." },
  ALREADY_STARTED = { 200, "Cannot start app. App is already running." },
  NO_MDA_HAS_BEEN_DEPLOYED = { 500, "Cannot start app. There is no MDA deployed." },
  APP_ALREADY_HAS_A_STARTING_JOB = { 500, "Cannot start app. There is already a starting job id found." },
  NO_SUCH_STARTJOB = { 404, "Job not found." },
  NO_PACKAGE = { 500, "Cannot start app. There should be a package configured for this environment." },
  ALREADY_LOCKED = { 500, "Cannot start app. There is already a lock on this environment." },
  DB_SYNC_FAILED = { 500, "Cannot start app. Synchronization of database failed." },
  INVALID_DB_STRUCTURE = { 500, "Cannot start app. The database is out-of-sync with the model. Please set AutoSyncDb parameter to true to synchronize the database automatically on startup." },
  MISSING_CONSTANT = { 500, "Cannot start app. Missing one or more constant values." },
  INSECURE_ADMIN_PASSWORD = { 500, "Cannot start app. There is a user with administrator role with password '1'. This is not allowed." },
  STARTUP_ACTION_FAILED = { 500, "Cannot start app. Startup action failed." },
  START_FAILED = { 500, "Cannot start app: result (detail status)" },
  STOP_FAILED = { 500, "Cannot stop app: reason" },
  PACKAGE_NOT_FOUND = { 404, "Package not found." },
  UPLOAD_COPY_FAILED = { 500, "Failed to store the deployment package." },
  INVALID_PACKAGE = { 500, "Failed to process the deployment package." },
  INVALID_RUNTIME_VERSION = { 400, "This Runtime version is not supported on this environment." },
  NO_ACCESS = { 403, "You do not have access" },
  TRANSPORT_NOT_ALLOWED = { 403, "No access to transport to environment 'mode'." },
  APP_IS_RUNNING = { 403, "The 'mode' environment of 'app id' must be stopped to do transport." },
  ["NOT ALLOWED"] = { 403, "Cannot transport - MDA processing failed, try uploading again with a valid MDA." },
  PACKAGE_PARSE_FAILED = { 500, "Failed to parse deployment package file." },
  ["SERVICE UNAVAILABLE"] = { 503, "Cannot transport - MDA is still being processed, retry later" },
  ENVIRONMENT_NOT_STOPPED = { 403, "Environment needs to be stopped." },
  ENVIRONMENT_NOT_DEPLOYED = { 422, "No app deployed to the environment." },
  ENVIRONMENT_CLEAN_FAILED = { 500, "Unable to clean the environment. Please contact Support." },
  CONSTANT_NOT_FOUND = { 400, "Constant not found: constant name." },
  CUSTOM_SETTING_NOT_SUPPORTED = { 400, "Custom setting not supported." },
  SCHEDULED_EVENT_NOT_FOUND = { 400, "Scheduled Event not found: scheduled event name." },
  INVALID_SCHEDULED_EVENT_PARAMETER = { 500, "Scheduled Event parameter should be Enabled or Disabled." },
  INVALID_REQUEST = { 400, "Memory per instance cannot be smaller than 1024 MB." },
  NOT_ALLOWED = { 400, "Scaling is only available for licensed apps using a supported version of Mendix." },
  NOT_FOUND = { 404, "An App or Environment is not found." },
  ["NOT FOUND"] = { 404, "An App or Environment is not found." },
  FORBIDDEN = { 403, "You do not have access" },
  -- Build API
  INVALID_VERSION = { 400, "The Version parameter does not contain a valid version string. Please provide a version with a major, minor and patch number, like '2.3.5'." },
  BUILD_FAILED = { 500, "Build job failed." },
  PACKAGE_IN_USE = { 409, "Package is still in use." },
  BUILD_NOT_SUCCEEDED = { 500, "Build not successful finished." },
  -- Backups API v2
  NOT_SUPPORTED = { 400, "This endpoint can only be used with Mendix Cloud" },
  ENVIRONMENT_BUSY = { 400, "Environment is busy, please try again later or contact Support for assistance." },
  INVALID_STATE = { 400, "There is currently a maintenance action in progress. Please wait until that is finished." },
  SERVICE_UNAVAILABLE = { 500, "Operation failed. Please try again later or contact Support if the problem persists." },
  SNAPSHOT_LISTING_FAILED = { 500, "An error occurred while listing the backups. Please contact Support." },
  UNSUPPORTED = { 400, "Unsupported data_type" },
  ERROR_NOT_ALLOWED = { 400, "Not allowed to restore backups." },
}

M.codes = C

-- Where the docs' tables give a code another status on one route: {method, path pattern, {CODE = status}}.
M.by_route = {
  -- Get Start Environment Status: ALREADY_STARTED is a 500 there (200 when starting)
  { "GET", "^/deploy/api/1/apps/[^/]+/environments/[^/]+/start/[^/]+$", { ALREADY_STARTED = 500 } },
  -- Backups restores: "Source snapshot not found" / "Restore not found" are 400 NOT_FOUND
  { nil, "^/deploy/api/v2/apps/[^/]+/environments/[^/]+/restores", { NOT_FOUND = 400 } },
}

-- lookup(api, code [, method, path]) -> {status=, message=} or nil: the documented status of
-- `code`, on the route of `method` and `path` when the docs give it another one there.
-- `api` is informational (codes are unique across the API-key APIs).
function M.lookup(api, code, method, path)
  local c = C[code]
  if not c then return nil end
  local status = c[1]
  for _, r in ipairs(M.by_route) do
    if (r[1] == nil or r[1] == method) and type(path) == "string" and path:find(r[2]) and r[3][code] then
      status = r[3][code]
    end
  end
  return { status = status, message = c[2] }
end

return M
