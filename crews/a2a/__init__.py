"""Every crew as an A2A agent: its card, the request handler over the job store, inputs, tasks and their updates, answers to what a job asks (turns), checks (strict), push notifications (push/)."""
