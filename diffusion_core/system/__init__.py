"""The process and the machine: CPU facts, event counters."""
