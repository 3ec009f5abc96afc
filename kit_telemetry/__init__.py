"""kit-telemetry: OpenTelemetry-based observability and budgets for LLM agents."""
