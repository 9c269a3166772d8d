"""Tools a role may call: the registry, per-step allow-lists, the built-in tools."""
