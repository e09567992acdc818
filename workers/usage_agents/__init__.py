"""The usage process's agents, tasks and pages (workers/usage_app.py discovers them)."""
