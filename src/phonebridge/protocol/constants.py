"""Numbers of the KDE Connect protocol, each with where it comes from (see PROTOCOL.md)."""

PROTOCOL_VERSION = 8
"""What we announce. KDE 25.04, Android 1.33+, GSConnect 62 and Valent announce 8 (PROTOCOL.md §5)."""

MIN_PROTOCOL_VERSION = 7
"""Oldest version we accept; KDE 22.12 speaks 7 (Valent's VALENT_NETWORK_PROTOCOL_MIN is 7 too)."""

UDP_PORT = 1716
"""Discovery port: identities are broadcast to and received on udp/1716 (§3.1)."""

TCP_PORT_MIN, TCP_PORT_MAX = 1716, 1764
"""The main TCP listener takes the first free port in this range; a `tcpPort` outside it is ignored (§3.1)."""

PAYLOAD_PORT_MIN, PAYLOAD_PORT_MAX = 1739, 1764
"""Payload listeners (§3.1, §7); Valent refuses ports outside this range."""

MAX_IDENTITY_LINE = 8192
"""KDE and Valent refuse identity lines longer than this, before and after TLS (§1)."""

MAX_LINE = 32 * 1024 * 1024
"""KDE and Android discard lines longer than 32 MiB on an established link (§1)."""

PAIR_TIMEOUT = 30.0
"""Seconds a pairing request stays open on either side (KDE pairinghandler.cpp: 30 s, §6.2)."""

PAIR_CLOCK_TOLERANCE = 1800
"""A v8 pair request whose timestamp is further than this from our clock is refused (§5)."""

MAX_DEVICE_NAME = 32
"""Device names are cut to 32 characters by KDE and Android (§2)."""

DEVICE_NAME_FORBIDDEN = "\"',;:.!?()[]<>"
"""Characters every implementation strips from device names (KDE dbushelper.cpp, §2)."""

DEVICE_TYPES = ("desktop", "laptop", "phone", "tablet", "tv")
"""deviceType values peers understand; never send `smartphone` (§2)."""

MDNS_SERVICE_TYPE = "_kdeconnect._udp.local."
"""DNS-SD service type KDE >= 23.08, Android and Valent announce and browse (§3.4)."""

KDE_HANDSHAKE_BUDGET = 1.0
"""KDE as TCP server closes a socket whose identity/TLS is not done within 1 s (§3.3)."""
