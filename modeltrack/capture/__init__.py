"""What modeltrack captures about a run: params, data fingerprints, environment."""
