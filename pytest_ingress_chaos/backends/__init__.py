"""Backends provision the sample service behind an ingress and carry out chaos on it."""
