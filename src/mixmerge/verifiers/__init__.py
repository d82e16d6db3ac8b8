"""Verifiers: the code sandbox, math and MCQ answer checks, IF checkers and the scoring worker pool."""
