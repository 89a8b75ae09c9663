"""Logs and metrics: the structured access log with its redaction filter, and the Prometheus registry."""
