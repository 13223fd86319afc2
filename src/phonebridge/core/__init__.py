"""Orchestration: devices, pairing, plugins. asyncio allowed; no HTTP, no SQL."""
