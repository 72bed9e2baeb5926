"""The agent's ledger: what the GPUs earned, what their electricity cost, and what is left."""
