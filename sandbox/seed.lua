-- The sandbox's initial world. Readable on purpose: copy it, edit it, pass it with --seed FILE.
-- Times are simulated seconds; the sandbox scales them with time_scale.
--
-- IDs: v1 addresses an app by its AppId (subdomain, e.g. "calc"); v4, Backups and the v4 UI
-- use the ProjectId (a UUID). Private Cloud resources are separate (clusters, namespaces, apps).
return {
  users = {
    -- API-key users (Deploy v1/v2, Build, Backups). can_deploy=false (transport, backups) and
    -- can_view_logs=false (log downloads) get the documented 403s.
    { username = "sandbox@example.com", apikey = "sandbox-apikey-0000", name = "Sandbox User", can_deploy = true },
    { username = "viewer@example.com", apikey = "sandbox-apikey-viewer", name = "Read Only Viewer", can_deploy = false, can_view_logs = false },
  },
  tokens = {
    -- Personal access tokens (Deploy v4, Private Cloud Deploy/Build).
    { token = "sandbox-pat-rw", user = "sandbox@example.com", scopes = { "mx:deployment:read", "mx:deployment:write",
      "mx:pipelines:read", "mx:pipelines:write", "mx:webhook:read", "mx:webhook:write", "mx:modelrepository:repo:read" } },
    { token = "sandbox-pat-ro", user = "sandbox@example.com", scopes = { "mx:deployment:read", "mx:pipelines:read",
      "mx:webhook:read", "mx:modelrepository:repo:read" } },
  },
  credentials = { -- what `mxdeploy sandbox` prints and `--sandbox` runs use
    username = "sandbox@example.com", apikey = "sandbox-apikey-0000",
    token = "sandbox-pat-rw", readonly_token = "sandbox-pat-ro",
  },

  -- Simulated job durations in seconds (before time_scale).
  durations = {
    start = 90,           -- v1 start: Starting for this long, then Started
    upload_queued = 2,    -- v2 upload job: Queued, then Running, then Completed
    upload_running = 8,
    build_queued = 5,     -- Build API: Queued, Building, Succeeded
    build_building = 60,
    backup_queued = 2,    -- snapshots, archives and restores: queued, running, completed
    backup_running = 30,
    pc_created = 1,       -- Private Cloud jobs: created, running, finished
    pc_running = 5,
  },

  apps = {
    {
      AppId = "calc", ProjectId = "c533ee0b-f7db-4e62-868b-1192d392ccec", Name = "Calculation App",
      licenseType = "licensed", region = "prod2-eu-central-1",
      technicalContact = { userId = "sandbox@example.com", name = "Sandbox User", status = "active" },
      members = { "sandbox@example.com", "viewer@example.com", "jane.doe@example.com" },
      packages = {
        { PackageId = "4ee10492-6cfc-4582-b825-a9040c0988ad", Name = "Main line-1.1.5.9.mda", Version = "1.1.5.9",
          Description = "Initial app", Creator = "Richard Ford", CreationDate = 1404739654045, Size = 1999059,
          Status = "Succeeded", MendixVersion = "9.24.0.2965" },
        { PackageId = "b3d14e53-2654-4534-b374-9179a69ef3cf", Name = "Main line-2.5.4.63.mda", Version = "2.5.4.63",
          Description = "Add scientific mode", Creator = "Richard Ford", CreationDate = 1404990271835, Size = 7731521,
          Status = "Succeeded", MendixVersion = "9.24.0.2965" },
        { PackageId = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e001", Name = "Main line-2.6.0.1.mda", Version = "2.6.0.1",
          Description = "Broken build", Creator = "Richard Ford", CreationDate = 1405990271835, Size = 120,
          Status = "Failed", MendixVersion = "9.24.0.2965" },
        { PackageId = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e002", Name = "Main line-2.7.0.1.mda", Version = "2.7.0.1",
          Description = "Still uploading", Creator = "Richard Ford", CreationDate = 1406990271835, Size = 4096,
          Status = "Uploading", MendixVersion = "9.24.0.2965" },
        -- declares a constant no environment has a value for: starting it fails with
        -- MISSING_CONSTANT until one is set (an upload declares its own: sandbox/packages.lua)
        { PackageId = "0f5b6c3e-9a39-4a8e-8d43-54c0b0a1e003", Name = "Main line-3.0.0.1.mda", Version = "3.0.0.1",
          Description = "Adds payments", Creator = "Richard Ford", CreationDate = 1407990271835, Size = 8123456,
          Status = "Succeeded", MendixVersion = "9.24.0.2965",
          Constants = { "MyFirstModule.ApiUrl", "MyFirstModule.PaymentKey" } },
      },
      environments = {
        { Mode = "Test", EnvironmentId = "22064f8f-ee55-438c-9ab2-182f2f8e5f2f", Status = "Stopped",
          Url = "https://calc-test.mendixcloud.com", Production = false, PackageId = "4ee10492-6cfc-4582-b825-a9040c0988ad",
          Instances = 1, MemoryPerInstance = 1024, planName = "S21-STANDARD",
          tags = { "sandbox" } },
        { Mode = "Acceptance", EnvironmentId = "cd5fc610-edb0-43c5-a374-0439a6411ace", Status = "Running",
          Url = "https://calc-accp.mendixcloud.com", Production = false, PackageId = "b3d14e53-2654-4534-b374-9179a69ef3cf",
          Instances = 1, MemoryPerInstance = 1024, planName = "S21-STANDARD" },
        { Mode = "Production", EnvironmentId = "867c9f56-84ec-438b-b1ae-9f9c50377cba", Status = "Running",
          Url = "https://calc.mendixcloud.com", Production = true, PackageId = "b3d14e53-2654-4534-b374-9179a69ef3cf",
          Instances = 2, MemoryPerInstance = 2048, planName = "M21-PREMIUM", snapshots = 5 },
      },
    },
    {
      AppId = "tictactoc", ProjectId = "f5129445-b638-42f4-8108-5f370c85dc57", Name = "Tic Tac Toc",
      licenseType = "licensed", region = "prod2-eu-central-1",
      technicalContact = { userId = "sandbox@example.com", name = "Sandbox User", status = "active" },
      members = { "sandbox@example.com" },
      packages = {},
      environments = {
        { Mode = "Test", EnvironmentId = "3a1c6d7e-0000-4000-8000-000000000001", Status = "Empty",
          Url = "https://tictactoc-test.mendixcloud.com", Production = false, Instances = 1, MemoryPerInstance = 1024 },
        { Mode = "Acceptance", EnvironmentId = "3a1c6d7e-0000-4000-8000-000000000002", Status = "Empty",
          Url = "https://tictactoc-accp.mendixcloud.com", Production = false, Instances = 1, MemoryPerInstance = 1024 },
        { Mode = "Production", EnvironmentId = "3a1c6d7e-0000-4000-8000-000000000003", Status = "Empty",
          Url = "https://tictactoc.mendixcloud.com", Production = true, Instances = 1, MemoryPerInstance = 1024 },
      },
    },
    {
      AppId = "freebie", ProjectId = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a", Name = "Free Playground",
      licenseType = "free", region = "prod1-eu-west-1",
      technicalContact = { userId = "sandbox@example.com", name = "Sandbox User", status = "active" },
      members = { "sandbox@example.com" },
      packages = {},
      environments = {
        { Mode = "Sandbox", EnvironmentId = "9e8d7c6b-0000-4000-8000-00000000f001", Status = "Running",
          Url = "https://freebie.mxapps.io", Production = false, Instances = 1, MemoryPerInstance = 1024 },
      },
    },
  },

  -- Default settings every environment gets (v1 settings endpoints).
  settings = {
    Constants = {
      { Name = "MyFirstModule.BooleanConstant", DataType = "_Boolean", Value = "false", DeployedValue = "false" },
      { Name = "MyFirstModule.ApiUrl", DataType = "String", Value = "https://example.com", DeployedValue = "https://example.com" },
    },
    CustomSettings = {},
    ScheduledEvents = {
      { Name = "MyFirstModule.Monitor_Scheduled_event", Value = "Disabled", DeployedValue = "Disabled" },
    },
  },

  privatecloud = {
    clusters = {
      { clusterId = "42dec69c-9bdb-4918-a979-716fbbe3b8a6", name = "sandbox-cluster", clusterType = "k8s",
        operatorType = "standard_operator", description = "Simulated Kubernetes cluster",
        namespaces = {
          { namespaceId = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0", name = "sandbox-ns", namespaceType = "standard",
            installationType = "Connected", secret = "sandbox-namespace-secret", productTypePCLM = "",
            plans = { { planName = "sandbox-db", planType = "OnDemand", activate = true, planConfig = "{type: \"database\"}" } },
            enableDevelopmentMode = true },
        } },
    },
    apps = {
      { appId = "c533ee0b-f7db-4e62-868b-1192d392ccec", appName = "Calculation App",
        environments = {
          { id = "pcenv01", name = "pc-test", namespaceId = "db6ed4d3-8b6d-4c2b-ad2b-2a69d0f7afe0",
            packageId = "905ba2c3-4424-48b8-b4b0-393eedd4cd1e", production = false, instances = 1 },
        },
        packages = {
          { id = "905ba2c3-4424-48b8-b4b0-393eedd4cd1e", modelVersion = "1.0.0.1", runtimeVersion = "9.24.0.2965",
            createdOn = "2026-01-05T10:00:00Z", description = "Seeded package", fileName = "calc_1.0.0.1.mda", fileSize = 4242 },
        } },
    },
    -- the spec requires cliVersionValue to match [0-9].[0-9].[0-9]
    cli_versions = {
      { operatorVersion = "2.9.0", cliVersion = "2.9.0", availableOperatingSystems = "windows,linux,macos", availableArchitectures = "x86,arm" },
      { operatorVersion = "2.8.1", cliVersion = "2.8.1", availableOperatingSystems = "windows,linux,macos", availableArchitectures = "x86,arm" },
    },
  },
}
