"""The chain side of the wallet: a JSON-RPC client for balances and the contracts SpareCycles uses.

web3 is heavy (seconds and tens of MB to import), so nothing here imports it at module level; it
is loaded on the first call that talks to a chain.
"""
