"""The ``crews`` command, one module per command group: the one place that wires every part together."""
