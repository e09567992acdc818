"""Prometheus metrics and health for the worker and the ingest.

Counts are kept in plain Python objects on the hot paths (`tally.py`) and turned
into Prometheus samples only when /metrics is scraped, so a decision or a request
costs a dict increment, not a prometheus_client call with its lock.
"""
