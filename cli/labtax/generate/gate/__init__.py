"""The quality gate: cheap deterministic checks before any judge call (checks.py)."""
