"""Serving under load: the serve workload, its load generator and the saturation rule that finds the knee."""
