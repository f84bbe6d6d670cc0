"""Stage 3: one job on a GPU runner — launch, readiness, the load sweep, telemetry, cleanup."""
