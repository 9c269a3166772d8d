"""The HTTP API (FastAPI): the app, its dependencies, error table, models, metrics and routes."""
