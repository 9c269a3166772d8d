"""The scripted OpenAI-compatible server (over real HTTP) and its script format: the only LLM stand-in."""
