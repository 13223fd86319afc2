"""PhoneBridge: your phone on every desktop, speaking the KDE Connect protocol (v7 and v8)."""

__version__ = "0.1.0"
