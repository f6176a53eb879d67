"""paid-hooks plugin: httpx (work in progress)."""
