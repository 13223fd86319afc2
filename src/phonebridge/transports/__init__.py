"""Transports move packets and nothing else: they hand the core links with a verified identity."""
