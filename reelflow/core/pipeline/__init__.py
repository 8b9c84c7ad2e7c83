"""Pipelines as graphs of steps: the definition (``definition``), its checks, and its estimate."""
