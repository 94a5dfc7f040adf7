"""Management commands of the console (console_token)."""
