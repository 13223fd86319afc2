"""LAN transport: UDP and mDNS discovery, TCP links with TLS role reversal (PROTOCOL.md §3, §4)."""
