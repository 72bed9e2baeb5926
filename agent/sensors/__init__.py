"""What the agent senses: GPUs through NVML (and, later, the user's presence and games)."""
