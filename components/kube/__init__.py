"""Kubernetes conventions every component builds on: names and labels (`labels`), Pod Security
"restricted" contexts (`security`), NetworkPolicy peers and Ingress specs (`network`), and the
default deny + DNS baseline of every namespace the stack creates (`baseline`).
May import: appstack_grammar and the SDKs only (components.config imports `labels`).
"""
