"""Plug-in modules for the registry's tests, each broken in its own way."""
