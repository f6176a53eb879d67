"""paid-hooks plugin: bedrock (work in progress)."""
