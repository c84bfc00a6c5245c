"""Fuzzing graphc: the shared oracle and the atheris harness (see docs/testing.md)."""
