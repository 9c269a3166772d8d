"""The crew file: models, loading, dumping, cross-field rules, problems with file:line:column, CrewAI import."""
