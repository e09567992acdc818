"""The console: a server-rendered web UI for the people who own the keys (docs/console.md)."""
