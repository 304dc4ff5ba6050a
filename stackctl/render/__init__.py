"""The render: a stack's files -> its validated config -> the program under the mock runtime ->
plain Kubernetes YAML (`stack`, `yaml_out`). May import components, stackctl.errors and the
mock runtime's public names (`stackctl.mockruntime`), nothing else of stackctl. The names below
are the render API every revision has (`stackctl diff` renders older ones through it)."""

from stackctl.render.stack import (
    REPO_ROOT,
    RenderResult,
    available_stacks,
    load_raw_config,
    render_config,
    render_stack,
)

__all__ = [
    "REPO_ROOT",
    "RenderResult",
    "available_stacks",
    "load_raw_config",
    "render_config",
    "render_stack",
]
