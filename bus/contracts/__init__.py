"""What crosses the bus, defined once: the step, its result, approvals, events, states, key layouts, usage."""
