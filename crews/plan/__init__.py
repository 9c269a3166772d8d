"""Plans: from a crew and a job's inputs to a DAG of steps with stable ids."""
