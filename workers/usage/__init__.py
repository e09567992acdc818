"""Per-key usage: what the worker counts from audit-log, and how it is read back."""
