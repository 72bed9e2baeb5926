"""Fakes for hardware we do not have here (NVIDIA GPUs), implementing the real interfaces."""
