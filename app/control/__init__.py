"""The contract between the agent and its clients (GUI, CLI, tests): models, events, client."""
