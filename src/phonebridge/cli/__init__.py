"""Command line: `phonebridge daemon` runs the daemon; every other command is an API client."""
