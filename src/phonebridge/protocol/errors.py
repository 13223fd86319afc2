"""Protocol error tree: who is to blame decides the blast radius (packet, link, or start-up)."""


class ProtocolError(Exception):
    """Root of every protocol-level error."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept (bad JSON, oversize line, invalid identity)."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (a bug or misuse on our side)."""
