"""Sans-I/O KDE Connect protocol: packets, framing, identities, pairing, verification keys.

Nothing in this package touches sockets, asyncio, TLS, SQL or the clock: time is a parameter.
"""
