"""labtax: taxonomy-as-code for LLM alignment data (IBM's LAB method)."""

__version__ = "0.1.0"
