"""The command line, `specedit`: one module a command (main.py assembles them)."""
