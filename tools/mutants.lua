-- The mutants of tools/mutation-check: realistic bugs, each one exact substitution in one file.
--
--   name   short, unique (tools/mutation-check NAME runs just this one)
--   area   credentials, redaction, retry, jobs, json, scheduler, operations, sandbox, scripts,
--          transport
--   file   path in the repository
--   from   text that must occur exactly once in the file (else the mutant is STALE: update it
--          to the code as it is now, keeping the bug it plants)
--   to     what replaces it
--   specs  ctest names that should catch it (nil: the whole suite)
--   why    the bug in one line, as a reviewer would describe it
--
-- Every fixed bug adds its mutant here (the bug as it was), so the test that came with the fix
-- keeps being checked. Long texts use [[...]]; keep `from` short but unambiguous.
return {
  -- ---- credentials --------------------------------------------------------------------------
  {
    name = "creds-file-group-readable", area = "credentials", file = "host/credentials.c",
    from = "if (st.st_mode & 077) {", to = "if (st.st_mode & 007) {",
    specs = { "cli_spec", "credentials_spec", "host_edge_spec" },
    why = "a credentials file readable by its group is accepted (only 'others' checked)",
  },
  {
    name = "creds-follow-redirect", area = "credentials", file = "host/http.c",
    from = "if (!same) /* credentials never follow to another origin, not even back again */",
    to = "if (0) /* credentials never follow to another origin, not even back again */",
    specs = { "transport_spec" },
    why = "Mendix-ApiKey / MxToken sent along a redirect to another origin",
  },
  {
    name = "creds-user-header-redirect", area = "credentials", file = "host/http.c",
    from = "if (!mx_http_credential_header(p)) buf_add(&kept, p, (size_t)(nl + 1 - p));",
    to = "buf_add(&kept, p, (size_t)(nl + 1 - p));",
    specs = { "transport_spec" },
    why = "a caller's own Authorization header survives a redirect to another origin",
  },
  {
    name = "creds-env-beats-profile", area = "credentials", file = "host/credentials.c",
    from = "    if (!explicit_profile) {\n        take_env(",
    to = "    if (1) {\n        take_env(",
    specs = { "cli_spec", "credentials_spec", "host_edge_spec" },
    why = "MENDIX_* variables override the profile the caller chose explicitly",
  },

  -- ---- redaction ----------------------------------------------------------------------------
  {
    name = "redact-userinfo-c", area = "redaction", file = "host/redact.c",
    from = "    if (u.userinfo) {\n        buf_add(b, url, (size_t)(u.userinfo - url));",
    to = "    if (0) {\n        buf_add(b, url, (size_t)(u.userinfo - url));",
    specs = { "transport_hostile_spec", "transport_spec", "bindings_errors_spec", "bindings_edge_spec" },
    why = "issue 14: core.redact_url keeps user:pass@ (--trace and mx.pending() print the password)",
  },
  {
    name = "redact-query-name-short", area = "redaction", file = "host/redact.c",
    from = "if (eq && secret_param(s, (size_t)(eq - s))) {",
    to = "if (eq && secret_param(s, (size_t)(eq - s) - 1)) {",
    specs = { "transport_hostile_spec", "transport_spec", "bindings_errors_spec", "bindings_edge_spec" },
    why = "off by one: the C redactor matches the parameter name without its last letter (token= shown)",
  },
  {
    name = "redact-fragment-shown", area = "redaction", file = "host/redact.c",
    from = [[if (u.hash) buf_add(b, *u.hash ? "#***" : "#", *u.hash ? 4 : 1);]],
    to = [[if (u.hash) buf_add(b, u.hash - 1, strlen(u.hash - 1));]],
    specs = { "bindings_errors_spec", "transport_hostile_spec", "transport_spec" },
    why = "a URL's fragment (#access_token=...) is shown as it is",
  },
  {
    name = "errors-url-unredacted", area = "redaction", file = "bindings/errors.lua",
    from = "  if e.url then e.url = M.redact_url(e.url) end\n", to = "",
    specs = { "bindings_errors_spec", "bindings_edge_spec", "transport_hostile_spec", "transport_spec" },
    why = "an error keeps the URL it was given: user info and secret query values in err.url and tostring(err)",
  },
  {
    name = "sandbox-log-secret-header", area = "redaction", file = "sandbox/request_log.lua",
    from = "out[name] = secret_header(name) and REDACTED or self:scrub(v)",
    to = "out[name] = self:scrub(v)",
    specs = { "sandbox_api_spec", "sandbox_faults_spec", "cli_spec" },
    why = "the sandbox request log keeps credential headers it did not seed (a wrong API key, a cookie)",
  },

  -- ---- retry --------------------------------------------------------------------------------
  {
    name = "retry-coded-500", area = "retry", file = "bindings/retry_policy.lua",
    from = [[if not policy.statuses[resp.status] then return nil, "status not retryable" end]],
    to = [[if not policy.statuses[resp.status] and not (resp.status == 500 and (resp.body or ""):find("errorCode", 1, true)) then return nil, "status not retryable" end]],
    specs = { "bindings_retry_spec", "bindings_jobs_spec" },
    why = "issue 14: a 500 with an errorCode (DB_SYNC_FAILED, ...) is retried like a transient failure",
  },
  {
    name = "retry-post-on-503", area = "retry", file = "bindings/retry_policy.lua",
    from = [[  if not idempotent then return nil, "non-idempotent request reached the server" end
]],
    to = "",
    specs = { "bindings_retry_spec", "transport_spec" },
    why = "a POST that got 503 is sent again (it reached the server: may run twice)",
  },
  {
    name = "retry-post-after-timeout", area = "retry", file = "bindings/retry_policy.lua",
    from = "if idempotent or err.reached == false then",
    to = [[if idempotent or err.reached == false or err.kind == "timeout" then]],
    specs = { "bindings_retry_spec", "transport_spec" },
    why = "a POST that timed out is sent again although it may have taken effect",
  },
  {
    name = "retry-one-too-many", area = "retry", file = "bindings/retry_policy.lua",
    from = "if retries >= (policy.max_retries or 0) then", to = "if retries > (policy.max_retries or 0) then",
    specs = { "bindings_retry_spec", "transport_spec" },
    why = "off by one: max_retries = 4 makes 5 retries (and retry = false still retries once)",
  },
  {
    name = "retry-after-header-case", area = "retry", file = "bindings/retry_policy.lua",
    from = [=[M.retry_after_seconds(h["retry-after"])]=], to = [=[M.retry_after_seconds(h["Retry-After"])]=],
    specs = { "bindings_retry_spec", "transport_spec", "transport_hostile_spec", "rate_budget_spec" },
    why = "Retry-After looked up with its wire spelling (headers are lower case): the server's wait is ignored",
  },
  {
    name = "retry-after-no-cap", area = "retry", file = "bindings/retry_policy.lua",
    from = [[if ra > policy.max_retry_after then return nil, "Retry-After too long" end]],
    to = [[if ra > policy.max_retry_after * 100 then return nil, "Retry-After too long" end]],
    specs = { "bindings_retry_spec" },
    why = "max_retry_after not honoured: a 30 s Retry-After is waited for when the cap is 5 s",
  },
  {
    name = "retry-tls-failure", area = "retry", file = "bindings/retry_policy.lua",
    from = [[    if err.kind == "tls" then return nil, "TLS verification failed: retrying cannot help" end
]],
    to = "",
    specs = { "transport_spec" },
    why = "a failed certificate check is retried like a network error",
  },
  {
    name = "retry-reached-always-false", area = "transport", file = "host/http_response.c",
    from = "lua_pushboolean(L, h->answered > 0 || sent > 0);", to = "lua_pushboolean(L, h->answered > 0);",
    specs = { "bindings_retry_spec", "transport_spec", "transport_hostile_spec" },
    why = "a failed exchange that sent its bytes but got no answer claims it never left: that POST is retried",
  },

  -- ---- jobs ---------------------------------------------------------------------------------
  {
    name = "jobs-unknown-state-pending", area = "jobs", file = "bindings/jobs.lua",
    from = [[  if s ~= nil and spec.pending and not spec.pending[s] then return "unknown", s end
]],
    to = "",
    specs = { "bindings_jobs_spec", "bindings_edge_spec" },
    why = "a job state the docs do not list is taken as pending: job:wait polls until its timeout",
  },
  {
    name = "jobs-deadline-overshoot", area = "jobs", file = "bindings/jobs.lua",
    from = "      pause = math.min(pause, left)\n", to = "",
    specs = { "bindings_jobs_spec", "bindings_edge_spec" },
    why = "job:wait sleeps a whole poll interval past its timeout",
  },
  {
    name = "jobs-backoff-max", area = "jobs", file = "bindings/jobs.lua",
    from = "interval = math.min(interval * 1.5, max_interval)", to = "interval = math.max(interval * 1.5, max_interval)",
    specs = { "bindings_jobs_spec" },
    why = "the poll interval jumps to its maximum after the first poll",
  },
  {
    name = "jobs-503-fails-job", area = "jobs", file = "bindings/jobs.lua",
    from = "[429] = true, [502] = true, [503] = true, [504] = true }",
    to = "[429] = true, [502] = true, [504] = true }",
    specs = { "bindings_jobs_spec", "bindings_edge_spec" },
    why = "an unavailable gateway (503) on a start-status poll is taken for the start job's failure",
  },
  {
    name = "jobs-failed-start-runs", area = "sandbox", file = "sandbox/deploy_v1.lua",
    from = "if not j.fail and q.env.start_job == j then", to = "if q.env.start_job == j then",
    specs = { "sandbox_api_spec", "sandbox_faults_spec", "bindings_jobs_spec" },
    why = "the sandbox's failed start job still leaves the environment Running",
  },

  -- ---- JSON ---------------------------------------------------------------------------------
  {
    name = "json-empty-array-object", area = "json", file = "host/json.c",
    from = "if (max == 0) return marked ? 0 : -1;", to = "if (max == 0) return -1;",
    specs = { "host_edge_spec", "json_spec", "transport_spec", "bindings_edge_spec" },
    why = "an empty array (mx.array(), a decoded []) is encoded as {}",
  },

  {
    name = "json-decimal-as-integer", area = "json", file = "host/json.c",
    from = "if (lua_stringtonumber(d->L, buf) == 0) return 0;",
    to = "lua_pushinteger(d->L, (lua_Integer)strtoll(buf, NULL, 10)); /* every number an integer */",
    specs = { "host_edge_spec", "json_spec", "bindings_edge_spec" },
    why = "a decimal such as 1.5 is read as an integer and truncated to 1",
  },

  {
    name = "json-null-dropped", area = "json", file = "host/json.c",
    from = "    lua_pushlightuserdata(d->L, NULL);\n    return add_value(d);",
    to = "    lua_pushnil(d->L);\n    return add_value(d);",
    specs = { "host_edge_spec", "json_spec", "transport_spec", "bindings_edge_spec" },
    why = "a decoded null becomes nil: the key disappears and a read-modify-write drops it",
  },


  -- ---- scheduler ----------------------------------------------------------------------------
  {
    name = "sched-ctrl-c-ignores-waits", area = "scheduler", file = "host/scheduler.c",
    from = "if ((t->state == T_WAITING || t->state == T_READY) &&",
    to = "if ((t->state == T_READY) &&",
    specs = { "cli_spec", "bindings_scripts_spec", "repl_tty_spec", "signals_spec", "transport_hostile_spec" },
    why = "Ctrl-C does not cancel waiting tasks: a script waiting on a job runs on to the end",
  },
  {
    name = "sched-no-deadlock", area = "scheduler", file = "host/scheduler.c",
    from = "    if (s->ready_head || s->transfers > 0) return 0;\n    int waiting = 0;",
    to = "    if (1) return 0;\n    int waiting = 0;",
    specs = { "host_edge_spec", "bindings_errors_spec", "cli_spec" },
    why = "deadlock detection off: tasks waiting on each other hang forever instead of failing",
  },
  {
    name = "tasks-timeout-no-cancel", area = "scheduler", file = "bindings/tasks.lua",
    from = "  if not idx then\n    t:cancel()\n", to = "  if not idx then\n",
    specs = { "bindings_errors_spec", "transport_spec" },
    why = "mx.timeout raises its timeout but leaves the timed-out work running",
  },
  {
    name = "tasks-wait-all-in-order", area = "scheduler", file = "host/scheduler_tasks.c",
    from = "if (j->winner || j->remaining == 0) mx_op_complete(op);",
    to = "if (j->remaining == 0) mx_op_complete(op);",
    specs = { "bindings_jobs_spec", "tasks_fleet_spec" },
    why = "wait_all notices a failure only once every other task has finished (waits for a slow job)",
  },
  {
    name = "sched-dead-stack-kept", area = "scheduler", file = "host/scheduler_tasks.c",
    from = "    lua_resetthread(co);\n    lua_setiuservalue(L, ud, 1);",
    to = "    if (status != LUA_OK) lua_resetthread(co);\n    lua_setiuservalue(L, ud, 1);",
    specs = { "tasks_fleet_spec" },
    why = "a finished task keeps its grown stack until the collector finds its coroutine: a fleet's garbage piles up",
  },

  -- ---- operations ---------------------------------------------------------------------------
  {
    name = "ops-path-not-escaped", area = "operations", file = "bindings/client.lua",
    from = "  e = request.escape(v)", to = "  e = v",
    specs = { "bindings_operations_spec", "bindings_errors_spec", "bindings_edge_spec" },
    why = "path values are not percent-encoded: 'a/b' or '?' in a value reaches another route",
  },
  {
    name = "ops-empty-path-value", area = "operations", file = "bindings/arguments.lua",
    from = [[    if v == "" then fail(op, i, p .. ": non-empty string expected") end
]],
    to = "",
    specs = { "bindings_errors_spec", "bindings_operations_spec" },
    why = "an empty path value is sent (GET /apps//environments lists something else)",
  },
  {
    name = "ops-already-started", area = "operations", file = "bindings/operations.lua",
    from = "already_done_codes = { ALREADY_STARTED = true },", to = "already_done_codes = {},",
    specs = { "conformance_apikey_spec", "bindings_jobs_spec", "bindings_retry_spec" },
    why = "starting an environment that already runs raises instead of being done",
  },
  {
    name = "ops-backups-extra-page", area = "operations", file = "bindings/client.lua",
    from = "if n == 0 or (total and offset >= total) or", to = "if n == 0 or (total and offset > total) or",
    specs = { "bindings_operations_spec", "bindings_edge_spec", "sandbox_api_spec" },
    why = "off by one: a Backups list asks for one page past its total",
  },
  {
    name = "ops-leap-year", area = "operations", file = "bindings/arguments.lua",
    from = "(y % 100 ~= 0 or y % 400 == 0)", to = "(y % 100 ~= 0)",
    specs = { "bindings_errors_spec" },
    why = "2000-02-29 refused as 'no such date' (the 400-year rule dropped)",
  },

  -- ---- sandbox ------------------------------------------------------------------------------
  {
    name = "sandbox-any-apikey", area = "sandbox", file = "sandbox/init.lua",
    from = [[if not u or u.apikey ~= h["mendix-apikey"] then]], to = "if not u then",
    specs = { "sandbox_api_spec", "conformance_apikey_spec", "bindings_errors_spec" },
    why = "the sandbox accepts any API key for a known user",
  },
  {
    name = "sandbox-readonly-writes", area = "sandbox", file = "sandbox/init.lua",
    from = [[local need = ctx.req.method == "GET" and scopes.read or scopes.write]],
    to = [[local need = scopes.read]],
    specs = { "sandbox_api_spec", "bindings_errors_spec" },
    why = "a read-only PAT may change things in the sandbox",
  },
  {
    name = "sandbox-fault-times", area = "sandbox", file = "sandbox/faults.lua",
    from = "(not f.times or f.fired < f.times)", to = "(not f.times or f.fired <= f.times)",
    specs = { "sandbox_faults_spec", "bindings_retry_spec" },
    why = "off by one: a fault with times = 2 fires three times",
  },

  -- ---- scripts ------------------------------------------------------------------------------
  {
    name = "script-deploy-no-stop", area = "scripts", file = "host/steps/release.lua",
    from = "  if env.Status == \"Running\" or env.Status == \"Starting\" then\n    m.v1.stop_environment(app_id, mode)",
    to = "  if env.Status == \"Starting\" then\n    m.v1.stop_environment(app_id, mode)",
    specs = { "bindings_scripts_spec", "workflows_spec" },
    why = "deploy.lua transports to a running environment without stopping it",
  },
  {
    name = "script-ctrl-c-is-failure", area = "scripts", file = "host/steps/init.lua",
    from = [[    if m.errors.is(err, "interrupted") or m.errors.is(err, "cancelled") then error(err, 0) end
]],
    to = "",
    specs = { "bindings_scripts_spec", "script_contract_spec" },
    why = "a script reports Ctrl-C as a failed step and exits 1 instead of 130",
  },

  {
    name = "script-deploy-leaves-tmpfile", area = "scripts", file = "scripts/deploy.lua",
    from = "__close = function() os.remove(path) os.remove(reserved) end", to = "__close = function() os.remove(path) end",
    specs = { "bindings_scripts_spec" },
    why = "deploy.lua leaves the empty file os.tmpname() made behind in /tmp",
  },

  -- ---- transport ----------------------------------------------------------------------------
  {
    name = "cancel-keeps-part-file", area = "transport", file = "host/http.c",
    from = "    release_slot(h);\n    if (h->out) {\n        close_output(h);\n        unlink(h->tmp_path);\n",
    to = "    release_slot(h);\n    if (h->out) {\n        close_output(h);\n",
    specs = { "transport_hostile_spec", "transport_spec" },
    why = "issue 14: a cancelled download (task:cancel, mx.timeout, Ctrl-C) leaves its .partXXXXXX file",
  },
  {
    name = "download-error-body-kept", area = "transport", file = "host/http.c",
    from = "int ok = rc == CURLE_OK && h->status >= 200 && h->status < 300;", to = "int ok = rc == CURLE_OK;",
    specs = { "transport_spec", "transport_hostile_spec" },
    why = "a download answered 404 replaces the output file with the error body",
  },
  {
    name = "redirect-limit-off-by-one", area = "transport", file = "host/http.c",
    from = "if (h->redirects >= h->max_redirects) {", to = "if (h->redirects > h->max_redirects) {",
    specs = { "transport_hostile_spec", "transport_spec" },
    why = "off by one: a redirect chain is followed one hop past max_redirects",
  },
}
