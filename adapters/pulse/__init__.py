"""Pulse API v2 (JSON-RPC over WebSocket): codec, adapter and local sandbox server."""
