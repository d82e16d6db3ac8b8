"""Data preparation: the row contract, the tiny synthetic tasks and real dataset sources."""
