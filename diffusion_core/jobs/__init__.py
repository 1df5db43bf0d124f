"""Background jobs: work in a thread that a page starts, polls and stops."""
