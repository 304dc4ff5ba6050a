"""`stackctl diff`: two renders compared, each object classified create/update/replace/delete as
the Kubernetes provider would (`compare`, `model`, `objects`, `rules`, `cluster`), printed
(`output`), the base revision rendered by its own code (`render`, `cmd`). May import components,
stackctl.render, stackctl.errors and the mock runtime's public names; nothing of stackctl.ops."""
