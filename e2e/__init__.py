"""End-to-end harness: a real control plane (e2e.cluster), the real Pulumi engine (e2e.engine)."""
