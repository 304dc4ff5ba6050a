# appstack: `make render` and `make test` work on a fresh machine; they create what they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov
STACK ?= dev

.PHONY: help venv tools render render-all test pytest lint format bench render-digests clean e2e-tools e2e e2e-monitoring \
	e2e-node-tools e2e-node e2e-monitoring-tools e2e-monitoring-node e2e-node-bench e2e-app-image e2e-app e2e-supply-tools \
	e2e-supply e2e-failure e2e-sign-tools e2e-sign e2e-gitops-tools e2e-gitops e2e-gitops-node e2e-rollouts-tools e2e-rollouts-node e2e-all bench-e2e

# Real-engine tools (Pulumi CLI, language host, providers, control plane, kwok), built from Go
# modules into a cache outside the work tree.
E2E_CACHE ?= $(HOME)/.cache/appstack-e2e

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(VENV)/.runtime-installed ## create the venv with the program's dependencies

tools: $(VENV)/.dev-installed $(CHECKOV_VENV)/.installed node_modules/.installed ## install every test tool (venvs, npm-groovy-lint, promtool)
	@command -v promtool >/dev/null || scripts/install-promtool.sh

render: venv ## render the dev stack (STACK=prod for prod) to out/$(STACK)
	$(BIN)/python -m stackctl render $(STACK)

render-all: venv ## render every stack (each Pulumi.<stack>.yaml: dev, staging, prod)
	for f in Pulumi.*.yaml; do s=$${f#Pulumi.}; $(BIN)/python -m stackctl render $${s%.yaml}; done

lint: $(VENV)/.dev-installed ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The suite runs on every core (pytest-xdist): each test is handed to the next free worker.
# Bytecode is written even where the environment sets PYTHONDONTWRITEBYTECODE: the suite starts
# some fifty Python processes (CLI runs, diff workers), each of which would compile the project's
# modules and pytest's rewritten tests again (`__pycache__/` is ignored by git).
PYTEST_WORKERS ?= auto
pytest: tools ## run the test suite only (PYTEST_WORKERS=0 runs it in one process)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load

test: tools lint pytest ## everything: lint, type check, unit tests, render + outside validators

e2e-tools: ## build the e2e tools from pinned Go modules into $(E2E_CACHE)/bin (only when pins change)
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh

bench: venv ## wall time of renders: dev, prod, synthetic stacks of 1, 10, 50 services
	$(BIN)/python -m stackctl.bench

# e2e: the binaries `make e2e-tools` builds from Go modules (e2e/tools/), then tests/e2e/ against
# a control plane it starts on loopback (e2e/cluster.py). Figures are printed at the end.
E2E_BIN ?= $(E2E_CACHE)/bin
E2E_LOG ?= out/e2e.log

e2e: e2e-tools $(VENV)/.dev-installed ## real engine vs a real control plane: up/preview/destroy, rollback, policy (needs Go)
	mkdir -p $(dir $(E2E_LOG))
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) APPSTACK_E2E_LOG=$(E2E_LOG) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m "not realnode and not realapp and not supply and not failure and not sign and not gitops and not gitopsnode"

# Tiers beside `make e2e` (README "e2e tiers"). e2e-node: four real nodes (kubelet, containerd,
# runc, bridge CNI, kube-proxy, each in its own network namespace; CoreDNS and kube-router as
# pods; e2e/realnode) joined to the same control plane, tests marked `realnode`. Needs root
# (mounts, cgroups, network namespaces); its Debian packages come from scripts/install-node-deps.sh.
e2e-node-tools: ## build the real-node tools (kubelet, kube-proxy, containerd, runc, CoreDNS, kube-router, images) into $(E2E_CACHE)/bin
	scripts/install-node-deps.sh
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh k8s kwok node coredns kube-router metrics-server

e2e-node: e2e-node-tools $(VENV)/.dev-installed ## real nodes: restricted pod, pod-to-pod, ClusterIP, DNS, NetworkPolicy, prod spread and drain
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m "realnode and not monitoringnode and not rolloutsnode"

# e2e-monitoring-node: the monitoring stack on the real nodes (issue 30 item 1): prometheus-operator,
# a Prometheus and an Alertmanager custom resource in the monitoring namespace, kube-state-metrics
# and the kubelets' cAdvisor (e2e/realnode/monitoring.py), every image built here from its Go
# module (make e2e-monitoring-tools); then prod of make e2e-app (its real_app fixture: registry,
# app image, stackctl deploy) scraped through its own ServiceMonitor. Tests marked `monitoringnode`.
e2e-monitoring-tools: e2e-node-tools ## build prometheus-operator, Prometheus, Alertmanager, kube-state-metrics and their images
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh prometheus-operator prometheus alertmanager kube-state-metrics

e2e-monitoring-node: e2e-tools e2e-monitoring-tools e2e-supply-tools e2e-app-image $(VENV)/.dev-installed ## monitoring on real nodes: operator, Prometheus, Alertmanager, kube-state-metrics, cAdvisor, the stack's alerts routed, prod's app scraped
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) E2E_CACHE=$(E2E_CACHE) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m monitoringnode

# e2e-rollouts-node: the Argo Rollouts controller for real (issue 30 item 2): rollouts-controller
# v1.10.2 built here (e2e/tools/build.sh argo-rollouts: Go 1.27.3 through GOTOOLCHAIN, that
# family only) and run as a pod of its own namespace from upstream's install.yaml
# (e2e/realnode/rollouts.py), beside the monitoring stack of e2e-monitoring-node and prod of
# e2e-app; prod's web switched to argoRollouts canary and blueGreen by `stackctl deploy`: a good
# canary promoted step by step by its analysis against the real Prometheus, a bad one aborted, a
# blue-green pre-promotion analysis promoting a good version and refusing a bad one, every switch
# on and off one update. Tests marked `rolloutsnode`. Root:
# `make e2e-app-image && flock /tmp/realnode.lock make e2e-rollouts-node`.
e2e-rollouts-tools: e2e-monitoring-tools ## build the Argo Rollouts controller, its image and its upstream install.yaml
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh argo-rollouts

e2e-rollouts-node: e2e-tools e2e-monitoring-tools e2e-rollouts-tools e2e-supply-tools e2e-app-image $(VENV)/.dev-installed ## Argo Rollouts on real nodes: canary promoted and aborted by analysis, blue-green pre-promotion, argoRollouts on/off in one update
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) E2E_CACHE=$(E2E_CACHE) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m rolloutsnode

# e2e-supply: the supply-chain tier (issues 28.4, 32.5): a real OCI registry (distribution, TLS +
# basic auth; e2e/registry.py), app/Dockerfile built by buildah on a stand-in base (e2e/image.py),
# pushed and pulled back by digest, and `stackctl registry prune` against that registry. Root:
# mmdebstrap and buildah's chroot isolation.
e2e-supply-tools: ## build the supply-chain tools (registry from distribution v3) and install buildah, skopeo, mmdebstrap, htpasswd
	scripts/apt-install.sh buildah skopeo mmdebstrap apache2-utils
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh registry

e2e-supply: e2e-tools e2e-supply-tools $(VENV)/.dev-installed ## image built by buildah, pushed to a real registry, pulled by digest; registry prune with deletes
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) E2E_CACHE=$(E2E_CACHE) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m supply

# e2e-app: the reference app on the real nodes (issues 28.4-5, 27.7): the four real nodes of
# e2e-node, the registry of e2e-supply on the nodes' bridge, app/Dockerfile's image pulled by every
# node's containerd with the stack's own pull Secret, dev and prod of the shipped stack files
# deployed by `stackctl deploy <env> --image` (e2e/realapp.py), tests marked `realapp`. Root.
# e2e-app-image builds the image archive it pushes (cached by app/'s content) outside the
# real-node lock: `make e2e-app-image && flock /tmp/realnode.lock make e2e-app`.
e2e-app-image: e2e-supply-tools $(VENV)/.dev-installed ## build (or find cached) the app image archive e2e-app pushes (buildah, stand-in base)
	E2E_CACHE=$(E2E_CACHE) $(BIN)/python -m e2e.realapp build-image

e2e-app: e2e-tools e2e-node-tools e2e-supply-tools e2e-app-image $(VENV)/.dev-installed ## the app on real nodes: dev and prod pulled from the registry, restricted, probes, spread, LB/ClusterIP traffic, verify via the API server
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) E2E_CACHE=$(E2E_CACHE) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m realapp

# e2e-monitoring: a real Prometheus (Debian prometheus 2.42, scripts/install-promtool.sh installs
# it with promtool) on loopback scrapes the reference app run as a process and evaluates the
# rendered rules and dashboard queries (e2e/prometheus.py); no Go, no cluster, about a minute, so
# `make e2e` runs these tests too (marker `monitoring`); this target runs them alone. Not the
# operator path: static targets stand in for ServiceMonitor discovery until the real-node tier.
e2e-monitoring: $(VENV)/.dev-installed ## real Prometheus over the reference app alone (also in make e2e): rules, a fault's alerts firing and clearing, dashboard queries
	mkdir -p out
	APPSTACK_E2E=1 $(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m monitoring

e2e-node-bench: e2e-node-tools $(VENV)/.dev-installed ## figures per real-node count (1, 2, 4): nodes Ready, add-ons Ready, pod scheduled->Ready
	mkdir -p out
	APPSTACK_E2E_BIN=$(E2E_BIN) $(BIN)/python -m e2e.realnode.bench

# e2e-failure: the failure paths of issue 29 (bad version stopped at its deadline, concurrent and
# interrupted deploys, --force-unlock, state restore, kube-apiserver restarted / unreachable) on
# the control plane with kwok nodes; its own cluster, tests marked `failure`. Each scenario but
# the deadline runs on the file:// backend, then on an S3 API server on loopback (versitygw,
# e2e/s3.py), which this target builds if needed.
e2e-failure: e2e-tools $(VENV)/.dev-installed ## failure paths: deadline, lock, SIGKILL, restore, apiserver faults; file:// and S3 backends (kwok)
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh versitygw
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m failure

# e2e-sign: signed images only (issue 32 item 4): the real registry of e2e-supply, cosign built
# from its Go module, the CI signing script, and `stackctl deploy prod --image` against the
# control plane of `make e2e`: a signed digest deploys, an unsigned one and one signed by another
# key are refused before anything changes.
e2e-sign-tools: ## build the signing tier's tools (registry, cosign, syft) and install htpasswd
	scripts/apt-install.sh apache2-utils
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh k8s kwok pulumi python-host kubernetes pulumi-policy registry cosign syft

e2e-sign: e2e-sign-tools $(VENV)/.dev-installed ## signed digest deploys to prod, unsigned and foreign-key digests refused (real registry, real cosign)
	mkdir -p out
	APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) E2E_CACHE=$(E2E_CACHE) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m sign

# e2e-gitops: GitOps for real (issue 32 item 6): Argo CD's application-controller and repo-server
# (the multi-call `argocd` built from github.com/argoproj/argo-cd/v3, e2e/argocd.py) as processes
# of the run beside the control plane of `make e2e`, with Debian's redis-server on loopback; the
# real publish-manifests.sh / revert-manifests.sh push the dev stack to a local bare repository
# that Argo CD syncs (sync, a new version rolled out, the revert rolled back, prune that keeps
# the JENKINS_HOME claim). argo-cd's go.mod needs Go 1.27: GOTOOLCHAIN=go1.27.3 for this tier
# only (the go command fetches that toolchain from the module proxy, about 76 MB).
e2e-gitops-tools: ## build Argo CD (argocd, Go 1.27.3 toolchain) and the control plane; install redis-server and git
	scripts/apt-install.sh redis-server git
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh k8s kwok argocd

e2e-gitops: e2e-gitops-tools $(VENV)/.dev-installed ## real Argo CD syncs the published dev manifests: rollout of a new version, revert, prune keeps JENKINS_HOME
	mkdir -p out
	GOTOOLCHAIN=go1.27.3 APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m gitops

# e2e-gitops-node: the same Argo CD syncs dev onto the four real nodes of e2e-node, the app's
# image (e2e-app-image) pulled from the run's registry; root, real-node lock:
# `make e2e-app-image && flock /tmp/realnode.lock make e2e-gitops-node`.
e2e-gitops-node: e2e-node-tools e2e-supply-tools e2e-app-image e2e-gitops-tools $(VENV)/.dev-installed ## real Argo CD syncs dev onto the real nodes: pods Ready from the registry, publish rolls out, revert rolls back
	mkdir -p out
	GOTOOLCHAIN=go1.27.3 APPSTACK_E2E=1 APPSTACK_E2E_BIN=$(E2E_BIN) E2E_CACHE=$(E2E_CACHE) \
		$(BIN)/python -m pytest tests/e2e -x -p no:cacheprovider -m gitopsnode

e2e-all: e2e e2e-failure e2e-node e2e-monitoring-node e2e-rollouts-node e2e-app e2e-supply e2e-sign e2e-gitops e2e-gitops-node ## every e2e tier (e2e includes e2e-monitoring's tests)

# bench-e2e: a benchmark tier beside `make e2e` (not in .ci/run): the real engine on synthetic
# prod stacks of 1, 10 and 50 services, each figure beside kubectl's floor (e2e/bench.py; README
# "e2e tiers", docs/performance.md). BENCH_E2E_RUNS=1 BENCH_E2E_SIZES=1,10 for a quick pass;
# BENCH_E2E_ARGS passes more (e.g. --parallel 8). It takes free ports: no lock needed.
BENCH_E2E_RUNS ?= 3
BENCH_E2E_SIZES ?= 1,10,50
BENCH_E2E_ARGS ?=
bench-e2e: e2e-tools $(VENV)/.dev-installed ## real engine at scale vs kubectl apply: up, no-op, preview, image bump, rollback (needs Go)
	E2E_CACHE=$(E2E_CACHE) e2e/tools/build.sh kubectl
	mkdir -p out
	APPSTACK_E2E_BIN=$(E2E_BIN) $(BIN)/python -m e2e.bench --runs $(BENCH_E2E_RUNS) \
		--sizes $(BENCH_E2E_SIZES) $(BENCH_E2E_ARGS)

render-digests: $(VENV)/.dev-installed ## rewrite tests/golden/render-digests.json after an intended output change
	$(BIN)/python -m tests.render_digests --update

clean: ## remove rendered output and caches (keeps the venvs)
	rm -rf out .pytest_cache .mypy_cache .ruff_cache .hypothesis
