"""An app's monitoring: `AppMonitoring` (`component`: ServiceMonitor, PrometheusRule, Grafana
dashboard ConfigMap), the stack's `StackDashboard` and `StackAlertRouting` (`routing`: the
AlertmanagerConfig of its alerts); alert and SLO rules as plain data
(`alert_model`, `alert_rules`, `slo_rules`, `rules_file`), the dashboards as data
(`dashboard_model`, `dashboard_queries`) and as Grafana's JSON model (`dashboards`).
May import: components.app (the pod's container name, the release plan), components.config,
components.kube.
"""
