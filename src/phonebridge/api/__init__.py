"""Local HTTP + WebSocket API (127.0.0.1 only, token required, Host and Origin checked)."""
