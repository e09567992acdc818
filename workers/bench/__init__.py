"""Benchmarks that print numbers and ratios (`eventguard bench ...`). Never used by tests
as timed assertions: these machines are shared and noisy."""

METHODS = ("secrets", "jwt-rs256", "jwt-es256", "hmac")  # sender methods of `bench pipeline`
