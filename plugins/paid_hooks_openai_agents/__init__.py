"""paid-hooks plugin: openai_agents (work in progress)."""
