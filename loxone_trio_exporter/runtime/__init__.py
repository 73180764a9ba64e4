"""The exporter's runtime on trio: connection tasks and the state owner (no web framework)."""
