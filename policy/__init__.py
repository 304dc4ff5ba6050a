"""appstack policy guardrails: plain rule functions (`policy.rules`), enforcement levels per
environment (`policy.enforcement`) and the CrossGuard pack built on them (`policy.pack`,
`policy/__main__.py`)."""
