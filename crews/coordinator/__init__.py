"""The coordinator: plans each job, dispatches its ready steps, follows it to its end; timers."""
