"""One app of the stack: `AppService` (`component`) and its parts: the pod (`pod`), the release
plan as data (`release`), its workloads (`workloads`, `argo_rollouts`), `autoscaling`, its
NetworkPolicy (`network_policy`), its ConfigMap and Secret data (`configuration`) and its health
URLs (`endpoints`).
May import: components.config, components.kube, appstack_grammar.
"""
