"""paid-hooks plugin: mistral (work in progress)."""
