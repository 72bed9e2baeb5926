"""Compiled contracts, one ``<Name>.json`` each (ABI, bytecode, compiler): committed, so no compiler is needed.

A package so that setup.py ships the JSON files as package data.
"""
