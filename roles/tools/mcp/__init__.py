"""MCP tools: the operator's server declarations, one session per server per worker, tools listed from them."""
