"""Widgets shared by the pages and the onboarding wizard."""
