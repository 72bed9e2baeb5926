"""The payout wallet: keys only in the OS keyring (or nowhere on the machine: watch-only), signing in the agent."""
