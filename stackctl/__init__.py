"""stackctl: the operator CLI for appstack. `cli` (+ `__main__`) dispatches to the commands;
`check` and `bench` compose the packages: `render` (stack -> YAML), `diff` (two renders
compared), `ops` (the Automation API) and `mockruntime`, the only package that touches Pulumi's
private runtime. Layers: mockruntime <- render <- diff, check, bench; ops stands alone."""
