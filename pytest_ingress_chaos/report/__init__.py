"""Renderers of a load window's result: terminal text and JSON."""
