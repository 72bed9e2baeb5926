"""The agent's local control API: loopback HTTP with a per-start token, and an event stream."""
