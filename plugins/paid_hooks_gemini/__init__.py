"""paid-hooks plugin: gemini (work in progress)."""
