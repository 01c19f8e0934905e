"""The modules whose sweeps the worker runs (each registers itself with `@sweep`)."""
