"""Merge nodes: one registry of methods (stock mergekit and study-exact) and streaming checkpoint I/O."""
