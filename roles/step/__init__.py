"""What a step leaves behind: its events, write-once result, usage, shared memory, cancel watch, approvals."""
