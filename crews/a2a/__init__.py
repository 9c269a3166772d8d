"""Every crew as an A2A agent: its card, the request handler over the job store, inputs, tasks, the mount."""
