"""The OpenAI-compatible HTTP server (`cadence serve`); see api_server.py."""
