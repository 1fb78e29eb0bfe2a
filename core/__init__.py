"""Shared core: configuration, durable file primitives, the window grid, browser discovery."""
