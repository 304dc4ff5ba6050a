"""An app's monitoring: `AppMonitoring` (`component`: ServiceMonitor, PrometheusRule) and its
alert and SLO rules as plain data (`alert_model`, `alert_rules`, `slo_rules`, `rules_file`).
May import: components.app (the pod's container name, the release plan), components.config,
components.kube.
"""
