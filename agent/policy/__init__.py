"""May this GPU work now? A pure decision from one sample, the settings and the clock."""
