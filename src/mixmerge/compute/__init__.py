"""Compute: GPU leases and the launcher every GPU rule runs through."""
