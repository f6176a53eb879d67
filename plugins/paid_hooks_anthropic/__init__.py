"""paid-hooks plugin: anthropic (work in progress)."""
