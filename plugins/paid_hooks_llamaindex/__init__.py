"""paid-hooks plugin: llamaindex (work in progress)."""
