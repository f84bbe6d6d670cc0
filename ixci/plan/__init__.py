"""Stage 2: the planner — the catalog expanded into jobs, and which of them an event runs."""
