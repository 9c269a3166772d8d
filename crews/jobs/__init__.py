"""The job store in Redis and what changes a job: submit, cancel, finish, job-level events, approvals."""
