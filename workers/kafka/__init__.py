"""Kafka client concerns shared by the worker and the ingest."""
