"""A2A push notifications: the tasks' webhook configs, the address guard, and the delivery loop."""
