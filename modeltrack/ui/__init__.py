"""Web UI (issue 5)."""
