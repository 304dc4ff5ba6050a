"""Stack operations on Pulumi's Automation API: deploy, verify, history, rollback, and the stack
files' images (`deploy`, `verify`, `history`, `rollback`, `images`; shared: `automation`,
`operator`, `stacks`); registry retention over the stacks' histories (`prune`: the command,
`retention`: its rules, `registry_api`: the OCI distribution calls). May import components
(config, git), stackctl.errors and pulumi's public automation API; never the render, the diff or
the mock runtime (deploy's check against the deployed state, `transition`, runs
`stackctl diff --state` as a child process)."""
