"""paid-hooks plugin: langchain (work in progress)."""
