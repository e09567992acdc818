"""The `eventguard` command and its subcommands (workers/cli/main.py has the tree)."""
