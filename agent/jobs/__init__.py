"""The job runtime: containers from strangers, sandboxed, frozen or stopped the instant the policy says so."""
