"""The exporter's runtime: connection tasks, the state owner and the supervisor (trio)."""
