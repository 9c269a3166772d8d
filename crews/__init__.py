"""crews: crew files and planning, the coordinator and job store, the HTTP API, the CLI, the local stack."""
