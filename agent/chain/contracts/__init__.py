"""Solidity sources (shipped for reference) and their build script; `make contracts` compiles them."""
