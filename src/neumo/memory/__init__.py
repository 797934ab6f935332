"""The memory instrument: how networks hold information (tasks, models' memory, sweeps, probes)."""
