"""The local LLM pool: installs that work from nothing, vLLM's CPU build and the converted model."""
