"""A simulated Android phone that speaks the real protocol over a real TLS link (loopback)."""
