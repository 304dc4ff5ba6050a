"""stackctl: the operator CLI for appstack (render, check, deploy, history, rollback)."""
