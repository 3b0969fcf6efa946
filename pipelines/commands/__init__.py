"""Click commands, one module per command; registered lazily in :mod:`pipelines.cli`."""
