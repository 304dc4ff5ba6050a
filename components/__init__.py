"""The Pulumi program: ComponentResources and the conventions they follow, a package per concern.

Layers, each importing only those below it: `kube` (Kubernetes conventions) <- `config` (typed
stack config) <- `app`, `jenkins`, `image`, `registry`, `pulumi_config` <- `monitoring`,
`namespace` (both read an app's release plan) <- `stack` (deploy: wires them all).
"""
