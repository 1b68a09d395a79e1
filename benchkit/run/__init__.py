"""Running a suite: the suite file, the runner that orders configurations, the worker process each one runs in, preflight checks, the environment record and telemetry."""
