"""Tests against a real OpenTelemetry Collector and a real Jaeger, built from Go modules."""
