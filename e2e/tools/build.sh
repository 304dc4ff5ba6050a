#!/usr/bin/env bash
# Build the e2e tools from their pinned Go modules into $E2E_CACHE/bin (default
# ~/.cache/appstack-e2e/bin), one tools module per family so each keeps its own k8s.io/* and
# Pulumi versions:
#   k8s/          kube-apiserver kube-controller-manager kube-scheduler etcd
#   kubectl       (not built by default: make bench-e2e) kubectl, a tool of the same k8s/ module:
#                 the floor of the benchmark (kubectl apply --server-side of the rendered manifests)
#   kwok/         kwok
#   pulumi/       pulumi (+ pulumi-language-python-exec copied from the sdk/v3 module)
#   python-host/  pulumi-language-python
#   kubernetes/   pulumi-resource-kubernetes (wrapper main, embeds generated from the module)
#   pulumi-policy/ policy-cli/pulumi + policy-cli/pulumi-analyzer-policy-python: the newest served
#                 CLI that still runs Python policy packs through that shim (see versions.env)
#   node/         a real node (make e2e-node; needs scripts/install-node-deps.sh first):
#                 node/kubelet/ kubelet, node/containerd/ containerd + containerd-shim-runc-v2 +
#                 ctr, node/runc/ runc (cgo, seccomp), and the OCI archives of the pause image
#                 (kubernetes' build/pause/linux/pause.c, gcc -static) and of the test image
#                 (Debian busybox-static), written by node/oci_image.py; kube-proxy (same module
#                 as the kubelet)
#   coredns/      CoreDNS with the cluster-DNS plugins only, and its image (make e2e-node-tools)
#   kube-router/  kube-router (NetworkPolicy firewall only) and its image: the binary plus
#                 Debian's iptables (nft front end) and ipset with their libraries
#   registry/     registry (github.com/distribution/distribution/v3, an OCI registry) for the
#                 supply-chain tier (make e2e-supply; e2e/registry.py runs it)
#   cosign/       cosign (github.com/sigstore/cosign/v2): signs and verifies image digests in
#                 the signing tier (make e2e-sign-tools, make e2e-sign)
#   syft/         syft (github.com/anchore/syft): an SBOM of each built image (CI, make e2e-sign)
#   versitygw/    versitygw (github.com/versity/versitygw v1.8.0, an S3 API server over a local
#                 directory): a team state backend on loopback for issue 29 scenario 5
#                 (build.sh versitygw; not yet used by a tier). Its pin is its go.mod only: a
#                 line in versions.env would change every family's stamp.
#   prometheus-operator/ prometheus-operator + prometheus-config-reloader and their images;
#   prometheus/   Prometheus (the operator's default version) with Kubernetes service discovery
#                 only (upstream's SD build tags), and its image; alertmanager/ Alertmanager and its image;
#   kube-state-metrics/ kube-state-metrics and its image: the monitoring tier on real nodes
#                 (make e2e-monitoring-tools, make e2e-monitoring-node). Versions: their go.mod.
#   metrics-server/ metrics-server (sigs.k8s.io/metrics-server) and its image, for the real nodes'
#                 metrics API (make e2e-node-tools); its version is its go.mod's, not a
#                 versions.env line (that file is in every family's stamp)
#   argocd/       argocd (github.com/argoproj/argo-cd/v3, cmd: the multi-call binary that runs as
#                 argocd-application-controller and argocd-repo-server) for the GitOps tier
#                 (make e2e-gitops-tools, make e2e-gitops); its go.mod says go 1.27, so this
#                 family alone builds with GOTOOLCHAIN=go1.27.3 (fetched by the go command)
#   argo-rollouts/ rollouts-controller (github.com/argoproj/argo-rollouts v1.10.2,
#                 cmd/rollouts-controller), its image and its upstream manifests/install.yaml,
#                 for the rollouts tier (make e2e-rollouts-tools, make e2e-rollouts-node); its
#                 go.mod says go 1.26.10: GOTOOLCHAIN=go1.27.3 as argocd
# A family is rebuilt only when its stamp changes: a hash of its go.mod, go.sum, Go, Python and C
# sources, versions.env, the Go version, this script's shared helpers and the family's own recipe
# (its binaries and build function: editing one family's recipe rebuilds that family alone; node:
# also gcc's, libseccomp's and busybox-static's Debian versions). Usage: build.sh [family...]
# (default: all).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=e2e/tools/versions.env
. "$here/versions.env"

E2E_CACHE=${E2E_CACHE:-$HOME/.cache/appstack-e2e}
bin=$E2E_CACHE/bin
stamps=$E2E_CACHE/stamps
mkdir -p "$bin" "$stamps"

export CGO_ENABLED=0
# -mod=readonly: build exactly the committed go.sum; -buildvcs=false: the tools modules sit in
# this repo, whose commit would otherwise be stamped into (and change) every binary.
export GOFLAGS="${GOFLAGS:-} -mod=readonly -buildvcs=false"
GO=${GO:-go}

all_families=(k8s kwok pulumi python-host kubernetes pulumi-policy)
# Not built by default (make e2e-tools): the real-node tier's tools (make e2e-node-tools), the
# supply-chain and signing tiers' tools (make e2e-supply-tools, make e2e-sign-tools), and
# kubectl, built by make bench-e2e.
extra_families=(node coredns kube-router registry cosign syft kubectl metrics-server versitygw
  prometheus-operator prometheus alertmanager kube-state-metrics argocd argo-rollouts)
families=("$@")
[ ${#families[@]} -gt 0 ] || families=("${all_families[@]}")

binaries_of() {
  case $1 in
    k8s) echo kube-apiserver kube-controller-manager kube-scheduler etcd ;;
    kubectl) echo kubectl ;;
    kwok) echo kwok ;;
    pulumi) echo pulumi pulumi-language-python-exec ;;
    python-host) echo pulumi-language-python ;;
    kubernetes) echo pulumi-resource-kubernetes ;;
    pulumi-policy) echo policy-cli/pulumi policy-cli/pulumi-analyzer-policy-python ;;
    node) echo kubelet kube-proxy containerd containerd-shim-runc-v2 ctr runc \
      node-images/pause.oci.tar node-images/busybox.oci.tar ;;
    coredns) echo coredns node-images/coredns.oci.tar ;;
    kube-router) echo kube-router node-images/kube-router.oci.tar ;;
    registry) echo registry ;;
    cosign) echo cosign ;;
    syft) echo syft ;;
    versitygw) echo versitygw ;;
    prometheus-operator) echo prometheus-operator prometheus-config-reloader \
      node-images/prometheus-operator.oci.tar node-images/prometheus-config-reloader.oci.tar ;;
    prometheus) echo prometheus node-images/prometheus.oci.tar ;;
    alertmanager) echo alertmanager node-images/alertmanager.oci.tar ;;
    kube-state-metrics) echo kube-state-metrics node-images/kube-state-metrics.oci.tar ;;
    metrics-server) echo metrics-server node-images/metrics-server.oci.tar ;;
    argocd) echo argocd ;;
    argo-rollouts) echo rollouts-controller node-images/argo-rollouts.oci.tar argo-rollouts/install.yaml ;;
    *) echo "build.sh: unknown family '$1' (allowed: ${all_families[*]} ${extra_families[*]})" >&2
      return 1 ;;
  esac
}

for fam in "${families[@]}"; do binaries_of "$fam" >/dev/null; done

# module_of <family>: the directory of the Go module it builds from.
module_of() {
  case $1 in
    kubectl) echo k8s ;;
    *) echo "$1" ;;
  esac
}

# recipe_of <family>: the functions that build it (part of its stamp).
recipe_of() {
  case $1 in
    node) echo build_node build_node_images ;;
    *) echo "build_${1//-/_}" ;;
  esac
}

stamp_of() {
  local fam=$1 f
  {
    "$GO" version
    echo "${GOOS:-} ${GOARCH:-} $CGO_ENABLED $GOFLAGS"
    cat "$here/versions.env"
    binaries_of "$fam"
    for f in stamp_of recipe_of module_of gobuild module_version expect_version \
      $(recipe_of "$fam"); do
      declare -f "$f"
    done
    (cd "$here/$(module_of "$fam")" && find . -name '*.go' -o -name '*.py' -o -name '*.c' -o -name go.mod \
      -o -name go.sum | LC_ALL=C sort | xargs sha256sum)
    case $fam in
      node) dpkg-query -W gcc libc6-dev libseccomp-dev busybox-static 2>/dev/null || true ;;
      kube-router) dpkg-query -W iptables ipset libc6 2>/dev/null || true ;;
    esac
  } | sha256sum | cut -d' ' -f1
}

# module_version <family> <module path>: the version the family's go.mod selects.
module_version() {
  (cd "$here/$1" && "$GO" list -m -f '{{.Version}}' "$2")
}

expect_version() {
  local fam=$1 mod=$2 want=$3 got
  got=$(module_version "$fam" "$mod")
  if [ "$got" != "$want" ]; then
    echo "build.sh: $fam/go.mod selects $mod $got, versions.env says $want" >&2
    exit 1
  fi
}

# gobuild <family> <output name> <package> [ldflags]: build into a temporary file, then move it
# into place, so a reader of $bin never sees half a binary. Prints the wall time.
gobuild() {
  local fam=$1 out=$2 pkg=$3 ldflags="-s -w ${4:-}" start tmp
  tmp=$(dirname "$bin/$out")/.$(basename "$out").tmp
  start=$(date +%s)
  (cd "$here/$fam" &&
    nice -n 10 "$GO" build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg")
  mv -f "$tmp" "$bin/$out"
  echo "built $out in $(($(date +%s) - start)) s"
}

build_k8s() {
  expect_version k8s k8s.io/kubernetes "v$KUBERNETES_VERSION"
  expect_version k8s go.etcd.io/etcd/server/v3 "v$ETCD_VERSION"
  local minor ld="" p
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  # The keys hack/lib/version.sh sets; without them /version reports v0.0.0-master.
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $p.gitVersion=v$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$KUBERNETES_BUILD_DATE"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    gobuild k8s "$b" "k8s.io/kubernetes/cmd/$b" "$ld"
  done
  # The module root of go.etcd.io/etcd/server/v3 is etcd's main package.
  gobuild k8s etcd go.etcd.io/etcd/server/v3 "-X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION"
}

# kubectl from the k8s/ module (its `tool` line), with the control plane's version -X flags:
# `kubectl version --client` reports the same v1.36.3.
build_kubectl() {
  expect_version k8s k8s.io/kubernetes "v$KUBERNETES_VERSION"
  local minor ld="" p
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $p.gitVersion=v$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$KUBERNETES_BUILD_DATE"
  done
  gobuild k8s kubectl k8s.io/kubernetes/cmd/kubectl "$ld"
}

build_kwok() {
  expect_version kwok sigs.k8s.io/kwok "v$KWOK_VERSION"
  gobuild kwok kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION"
}

build_pulumi() {
  expect_version pulumi github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_VERSION"
  expect_version pulumi github.com/pulumi/pulumi/sdk/v3 "v$PULUMI_VERSION"
  gobuild pulumi pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
  # The language host runs this Python script (committed in sdk/python/cmd/, so it ships in the
  # sdk/v3 module zip) and exits with "missing executor" when it is not beside the host binary.
  local sdk
  sdk=$(cd "$here/pulumi" && "$GO" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
  echo "copied pulumi-language-python-exec from sdk/v3 v$PULUMI_VERSION"
}

build_python_host() {
  expect_version python-host github.com/pulumi/pulumi/sdk/v3 "v$PULUMI_PYTHON_HOST_VERSION"
  gobuild python-host pulumi-language-python github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_PYTHON_HOST_VERSION"
}

build_pulumi_policy() {
  expect_version pulumi-policy github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_POLICY_CLI_VERSION"
  expect_version pulumi-policy github.com/pulumi/pulumi/sdk/v3 "v$PULUMI_POLICY_CLI_VERSION"
  mkdir -p "$bin/policy-cli"
  gobuild pulumi-policy policy-cli/pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_POLICY_CLI_VERSION"
  # This CLI runs a Python policy pack as `pulumi-analyzer-policy-python <engine> <pack dir>`,
  # found next to the CLI or on PATH; the shell script ships in the sdk/v3 module zip.
  local sdk
  sdk=$(cd "$here/pulumi-policy" && "$GO" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  install -m 0755 "$sdk/python/dist/pulumi-analyzer-policy-python" "$bin/policy-cli/pulumi-analyzer-policy-python"
  # Bundled plugins are looked up next to the running CLI: the same language host and shim.
  ln -sfn ../pulumi-language-python "$bin/policy-cli/pulumi-language-python"
  ln -sfn ../pulumi-language-python-exec "$bin/policy-cli/pulumi-language-python-exec"
}

build_kubernetes() {
  local mod=github.com/pulumi/pulumi-kubernetes/provider/v4 dir wrapper=$here/kubernetes/cmd/pulumi-resource-kubernetes
  expect_version kubernetes "$mod" "$KUBERNETES_PROVIDER_MODULE_VERSION"
  dir=$(cd "$here/kubernetes" && "$GO" mod download -json "$mod" >/dev/null &&
    "$GO" list -m -f '{{.Dir}}' "$mod")/cmd/pulumi-resource-kubernetes
  # What upstream's generate.go (run by `go generate` before a release build) writes: the
  # committed schema.json with its `version` set to the provider version, and the terraform
  # mapping minified. Both are gitignored here as upstream.
  python3 - "$dir" "$wrapper" "$KUBERNETES_PROVIDER_VERSION" <<'PY'
import json, sys
src, dst, version = sys.argv[1:]
with open(f"{src}/schema.json", encoding="utf-8") as f:
    schema = json.load(f)
schema["version"] = version
with open(f"{dst}/schema-embed.json", "w", encoding="utf-8") as f:
    json.dump(schema, f, separators=(",", ":"))
with open(f"{src}/terraform-mapping.json", encoding="utf-8") as f:
    mapping = json.load(f)
with open(f"{dst}/terraform-mapping-embed.json", "w", encoding="utf-8") as f:
    json.dump(mapping, f, separators=(",", ":"))
PY
  gobuild kubernetes pulumi-resource-kubernetes ./cmd/pulumi-resource-kubernetes \
    "-X $mod/pkg/version.Version=v$KUBERNETES_PROVIDER_VERSION"
}

build_node() {
  local k8s_ld="" p minor
  expect_version node/kubelet k8s.io/kubernetes "v$KUBERNETES_VERSION"
  expect_version node/containerd github.com/containerd/containerd/v2 "v$CONTAINERD_VERSION"
  expect_version node/runc github.com/opencontainers/runc "v$RUNC_VERSION"
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    k8s_ld+=" -X $p.gitVersion=v$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    k8s_ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$KUBERNETES_BUILD_DATE"
  done
  gobuild node/kubelet kubelet k8s.io/kubernetes/cmd/kubelet "$k8s_ld"
  gobuild node/kubelet kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$k8s_ld"
  # containerd's Makefile: CGO off for the shim, tag urfave_cli_no_docs, version via -X.
  local c=github.com/containerd/containerd/v2
  local c_ld="-X $c/version.Version=v$CONTAINERD_VERSION -X $c/version.Package=$c"
  for p in containerd containerd-shim-runc-v2 ctr; do
    GOFLAGS="$GOFLAGS -tags=urfave_cli_no_docs" gobuild node/containerd "$p" "$c/cmd/$p" "$c_ld"
  done
  # runc's seccomp support (RuntimeDefault profiles) is cgo against libseccomp; built without
  # the tag, runc runs every container unconfined. (libpathrs, in upstream's default tags, is a
  # Rust library that Debian does not ship; runc falls back to filepath-securejoin without it.)
  CGO_ENABLED=1 GOFLAGS="$GOFLAGS -tags=seccomp,urfave_cli_no_docs" \
    gobuild node/runc runc github.com/opencontainers/runc "-X main.gitCommit=v$RUNC_VERSION"
  build_node_images
}

build_registry() {
  local d=github.com/distribution/distribution/v3
  expect_version registry "$d" "v$DISTRIBUTION_VERSION"
  # distribution's Makefile: version, revision and mainpkg by -X (no build tags by default).
  gobuild registry registry "$d/cmd/registry" \
    "-X $d/version.version=v$DISTRIBUTION_VERSION -X $d/version.revision=v$DISTRIBUTION_VERSION -X $d/version.mainpkg=$d"
}

build_cosign() {
  local r=sigs.k8s.io/release-utils/version
  expect_version cosign github.com/sigstore/cosign/v2 "v$COSIGN_VERSION"
  # cosign's Makefile (LDFLAGS): the version through sigs.k8s.io/release-utils.
  gobuild cosign cosign github.com/sigstore/cosign/v2/cmd/cosign \
    "-X $r.gitVersion=v$COSIGN_VERSION -X $r.gitTreeState=clean -X $r.buildDate=$COSIGN_BUILD_DATE"
}

build_syft() {
  expect_version syft github.com/anchore/syft "v$SYFT_VERSION"
  # syft's .goreleaser.yaml: version, commit, date and summary through main's variables.
  gobuild syft syft github.com/anchore/syft/cmd/syft \
    "-X main.version=$SYFT_VERSION -X main.gitCommit=v$SYFT_VERSION -X main.buildDate=$SYFT_BUILD_DATE -X main.gitDescription=v$SYFT_VERSION"
}

build_versitygw() {
  local m=github.com/versity/versitygw
  expect_version versitygw "$m" v1.8.0
  # versitygw's Makefile (LDFLAGS): Version, Build and BuildTime in package main.
  gobuild versitygw versitygw "$m/cmd/versitygw" \
    "-X main.Version=v1.8.0 -X main.Build=v1.8.0 -X main.BuildTime=none"
}

# Argo CD (issue 32 item 6): cmd of github.com/argoproj/argo-cd/v3, one binary that runs as the
# component named by argv[0] or ARGOCD_BINARY_NAME (e2e/argocd.py). The tools module repeats
# argo-cd's own replaces (k8s.io/* staging modules -> v0.37.0, ...: a dependency's replaces do not
# apply) and resolves github.com/argoproj/argo-cd/gitops-engine/v3 (argo-cd replaces it by its
# nested ./gitops-engine, which the module zip lacks) to the published module of the same tag.
# argo-cd's go.mod says go 1.27.0: this family alone runs the go command with GOTOOLCHAIN, which
# takes that toolchain from the module proxy; every other family stays on the machine's Go.
# ldflags: argo-cd's Makefile (PACKAGE=.../common; version, buildDate, gitTreeState, gitTag,
# kubectlVersion = its k8s.io/client-go).
build_argocd() {
  local -x GOTOOLCHAIN=go1.27.3
  local v=3.6.2 p=github.com/argoproj/argo-cd/v3/common date client
  expect_version argocd github.com/argoproj/argo-cd/v3 "v$v"
  expect_version argocd github.com/argoproj/argo-cd/gitops-engine/v3 "v$v"
  date=$(cd "$here/argocd" && "$GO" list -m -f '{{.Time.Format "2006-01-02T15:04:05Z"}}' github.com/argoproj/argo-cd/v3)
  client=$(module_version argocd k8s.io/client-go)
  gobuild argocd argocd github.com/argoproj/argo-cd/v3/cmd \
    "-X $p.version=$v -X $p.buildDate=$date -X $p.gitTreeState=clean -X $p.gitTag=v$v -X $p.kubectlVersion=$client"
}

# Argo Rollouts (issue 30 item 2): cmd/rollouts-controller of github.com/argoproj/argo-rollouts,
# a `tool` of the argo-rollouts/ module, which repeats the module's own replaces (k8s.io/* staging
# modules -> v0.34.5, go-check, telegram-bot-api: a dependency's replaces do not apply). Its go.mod
# says go 1.26.10, newer than the machine's Go: this family runs the go command with the same
# GOTOOLCHAIN as argocd. ldflags: its Makefile's (utils/version: version, buildDate, gitCommit,
# gitTreeState). Image as upstream's Dockerfile: the static binary at /bin/rollouts-controller,
# USER 999, its home directory (the plugin-bin mount point). install.yaml: the module's
# manifests/install.yaml (CRDs, RBAC, the Deployment the harness adapts), copied beside it so the
# harness needs no Go.
build_argo_rollouts() {
  local -x GOTOOLCHAIN=go1.27.3
  local m=github.com/argoproj/argo-rollouts v=1.10.2 p date dir image
  p=$m/utils/version
  expect_version argo-rollouts "$m" "v$v"
  date=$(cd "$here/argo-rollouts" && "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$m")
  dir=$(cd "$here/argo-rollouts" && "$GO" list -m -f '{{.Dir}}' "$m")
  gobuild argo-rollouts rollouts-controller "$m/cmd/rollouts-controller" \
    "-X $p.version=$v -X $p.buildDate=$date -X $p.gitCommit=v$v -X $p.gitTreeState=clean"
  image=localhost/appstack-e2e/argo-rollouts:v$v
  mkdir -p "$bin/node-images" "$bin/argo-rollouts"
  python3 "$here/node/oci_image.py" --name "$image" --out "$bin/node-images/.argo-rollouts.oci.tar" \
    --user 999 --entrypoint /bin/rollouts-controller \
    --file "$bin/rollouts-controller:bin/rollouts-controller:0755" \
    --dir home/argo-rollouts:0755 --dir tmp:1777
  mv -f "$bin/node-images/.argo-rollouts.oci.tar" "$bin/node-images/argo-rollouts.oci.tar"
  install -m 0644 "$dir/manifests/install.yaml" "$bin/argo-rollouts/.install.yaml"
  mv -f "$bin/argo-rollouts/.install.yaml" "$bin/argo-rollouts/install.yaml"
  echo "built node-images/argo-rollouts.oci.tar ($image) and argo-rollouts/install.yaml"
}

# The pause image (the pod sandbox) from the pause.c in the k8s.io/kubernetes module zip, linked
# statically as upstream's build/pause/Makefile does, and the test image: Debian's busybox-static.
build_node_images() {
  local kdir work
  kdir=$(cd "$here/node/kubelet" && "$GO" list -m -f '{{.Dir}}' k8s.io/kubernetes)
  work=$(mktemp -d)
  mkdir -p "$bin/node-images"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-v$KUBERNETES_VERSION" \
    -o "$work/pause" "$kdir/build/pause/linux/pause.c"
  python3 "$here/node/oci_image.py" --name "$PAUSE_IMAGE" --out "$bin/node-images/.pause.oci.tar" \
    --user 65535:65535 --entrypoint /pause --file "$work/pause:pause:0755"
  mv -f "$bin/node-images/.pause.oci.tar" "$bin/node-images/pause.oci.tar"
  echo "built node-images/pause.oci.tar ($PAUSE_IMAGE)"
  # busybox-static: one binary; the image gets it as /bin/busybox plus the applet links a shell
  # script needs, a world-writable /tmp (so a refused write there shows a read-only root
  # filesystem, not a permission) and no other file (no /etc/passwd: pods give numeric uids).
  # (busybox 1.35.0's `wget -T` segfaults: tests bound wget with the `timeout` applet instead.)
  local applets=(sh cat echo grep id ls mkdir nc printf sleep touch httpd wget date tr cut
    nslookup timeout)
  local args=(--file /bin/busybox:bin/busybox:0755 --dir tmp:1777) a
  for a in "${applets[@]}"; do args+=(--symlink "bin/$a:busybox"); done
  python3 "$here/node/oci_image.py" --name "$BUSYBOX_IMAGE" \
    --out "$bin/node-images/.busybox.oci.tar" --env PATH=/bin --entrypoint /bin/sh "${args[@]}"
  mv -f "$bin/node-images/.busybox.oci.tar" "$bin/node-images/busybox.oci.tar"
  echo "built node-images/busybox.oci.tar ($BUSYBOX_IMAGE, busybox-static" \
    "$(dpkg-query -W -f '${Version}' busybox-static))"
  rm -rf "$work"
}

# CoreDNS: cmd/coredns of the coredns/ tools module (upstream's main with only the plugins a
# cluster DNS server without upstream needs), CGO off as upstream's Makefile; its image runs it
# as a non-root user.
build_coredns() {
  expect_version coredns github.com/coredns/coredns "v$COREDNS_VERSION"
  mkdir -p "$bin/node-images"
  gobuild coredns coredns ./cmd/coredns "-X github.com/coredns/coredns/coremain.GitCommit=v$COREDNS_VERSION"
  python3 "$here/node/oci_image.py" --name "$COREDNS_IMAGE" --out "$bin/node-images/.coredns.oci.tar" \
    --user 65532:65532 --entrypoint /coredns --file "$bin/coredns:coredns:0755" --dir tmp:1777
  mv -f "$bin/node-images/.coredns.oci.tar" "$bin/node-images/coredns.oci.tar"
  echo "built node-images/coredns.oci.tar ($COREDNS_IMAGE)"
}

# metrics-server: cmd/metrics-server of the metrics-server/ tools module (its `tool` line), CGO
# off and the version -X flags of upstream's Makefile (k8s.io/client-go/pkg/version). The version
# is the one its go.mod selects (a versions.env line would change every family's stamp; go.mod
# is in this family's stamp), and the image is named after it; e2e/realnode/metrics.py reads the
# same go.mod. The image runs the static binary as upstream's Dockerfile does (USER 65534).
build_metrics_server() {
  local v p=k8s.io/client-go/pkg/version image date
  v=$(module_version metrics-server sigs.k8s.io/metrics-server)
  # The build date: the release's time as the module proxy records it.
  date=$(cd "$here/metrics-server" &&
    "$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' sigs.k8s.io/metrics-server)
  image=localhost/appstack-e2e/metrics-server:${v#v}
  mkdir -p "$bin/node-images"
  gobuild metrics-server metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server \
    "-X $p.gitVersion=$v -X $p.gitCommit=$v -X $p.buildDate=$date"
  python3 "$here/node/oci_image.py" --name "$image" --out "$bin/node-images/.metrics-server.oci.tar" \
    --user 65534:65534 --entrypoint /metrics-server --file "$bin/metrics-server:metrics-server:0755" \
    --dir tmp:1777
  mv -f "$bin/node-images/.metrics-server.oci.tar" "$bin/node-images/metrics-server.oci.tar"
  echo "built node-images/metrics-server.oci.tar ($image)"
}

# elf_files <binary...>: oci_image.py --file arguments for the binaries' shared libraries and
# dynamic loader (as ldd resolves them here), each at the path the binary looks it up.
elf_files() {
  # (ldd of several files also prints each file's name as a "path:" header line: skipped)
  ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*[^:]$/ {print $1}' |
    LC_ALL=C sort -u |
    while read -r lib; do echo "--file=$(readlink -f "$lib"):${lib#/}:0755"; done
}

# kube-router: cmd/kube-router, CGO off, version -X flags as its Makefile. Its image: the binary,
# and the iptables (nft front end: the one kube-proxy uses on the node) and ipset it runs, with
# the xtables extensions and every shared library, from Debian's packages on this machine.
build_kube_router() {
  local m=github.com/cloudnativelabs/kube-router/v2 xt=/usr/lib/x86_64-linux-gnu/xtables f
  expect_version kube-router "$m" "v$KUBE_ROUTER_VERSION"
  mkdir -p "$bin/node-images"
  gobuild kube-router kube-router "$m/cmd/kube-router" \
    "-X $m/pkg/version.Version=v$KUBE_ROUTER_VERSION -X $m/pkg/version.BuildDate=$KUBERNETES_BUILD_DATE"
  local args=(--file "$bin/kube-router:usr/local/bin/kube-router:0755"
    --file /usr/sbin/xtables-nft-multi:usr/sbin/xtables-nft-multi:0755
    --file /usr/sbin/ipset:usr/sbin/ipset:0755 --dir tmp:1777 --dir run:0755 --dir var/run:0755
    --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --entrypoint /usr/local/bin/kube-router)
  for f in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    args+=(--symlink "usr/sbin/$f:xtables-nft-multi")
  done
  for f in "$xt"/*.so; do args+=(--file "$f:${f#/}:0644"); done
  mapfile -t libs < <(elf_files /usr/sbin/xtables-nft-multi /usr/sbin/ipset "$xt"/*.so)
  for f in "${libs[@]}"; do args+=("$f"); done
  python3 "$here/node/oci_image.py" --name "$KUBE_ROUTER_IMAGE" \
    --out "$bin/node-images/.kube-router.oci.tar" "${args[@]}"
  mv -f "$bin/node-images/.kube-router.oci.tar" "$bin/node-images/kube-router.oci.tar"
  echo "built node-images/kube-router.oci.tar ($KUBE_ROUTER_IMAGE; iptables" \
    "$(dpkg-query -W -f '${Version}' iptables), ipset $(dpkg-query -W -f '${Version}' ipset))"
}

# The monitoring families (make e2e-monitoring-tools; not in the default set). Their versions are
# their go.mod pins, read back here (module_version), so adding them leaves versions.env, and with
# it every other family's stamp, unchanged. Images: the static binary at upstream's path, user
# nobody (65534) as upstream's Dockerfiles, named localhost/appstack-e2e/<name>:<version>. (Each
# recipe writes its images itself: a shared helper would be outside its stamp, see recipe_of.)
# prometheus-operator: cmd/operator and cmd/prometheus-config-reloader, CGO off, the version
# through github.com/prometheus/common/version as its Makefile (GO_BUILD_LDFLAGS).
build_prometheus_operator() {
  local m=github.com/prometheus-operator/prometheus-operator v c=github.com/prometheus/common/version
  v=$(module_version prometheus-operator "$m")
  local ld="-X $c.Version=${v#v} -X $c.Revision=$v -X $c.Branch=$v"
  gobuild prometheus-operator prometheus-operator "$m/cmd/operator" "$ld"
  gobuild prometheus-operator prometheus-config-reloader "$m/cmd/prometheus-config-reloader" "$ld"
  mkdir -p "$bin/node-images"
  python3 "$here/node/oci_image.py" --name "localhost/appstack-e2e/prometheus-operator:$v" \
    --out "$bin/node-images/.prometheus-operator.oci.tar" --user 65534:65534 --entrypoint /bin/operator \
    --file "$bin/prometheus-operator:bin/operator:0755"
  mv -f "$bin/node-images/.prometheus-operator.oci.tar" "$bin/node-images/prometheus-operator.oci.tar"
  echo "built node-images/prometheus-operator.oci.tar (localhost/appstack-e2e/prometheus-operator:$v)"
  mkdir -p "$bin/node-images"
  python3 "$here/node/oci_image.py" --name "localhost/appstack-e2e/prometheus-config-reloader:$v" \
    --out "$bin/node-images/.prometheus-config-reloader.oci.tar" --user 65534:65534 --entrypoint /bin/prometheus-config-reloader \
    --file "$bin/prometheus-config-reloader:bin/prometheus-config-reloader:0755"
  mv -f "$bin/node-images/.prometheus-config-reloader.oci.tar" "$bin/node-images/prometheus-config-reloader.oci.tar"
  echo "built node-images/prometheus-config-reloader.oci.tar (localhost/appstack-e2e/prometheus-config-reloader:$v)"
}

# Prometheus: cmd/prometheus with the only service discovery the operator's configuration uses
# (kubernetes_sd_configs; file, static and http stay), by the build tags upstream's README
# documents for that ("remove_all_sd,enable_kubernetes_sd"), plus .promu.yml's netgo; without
# its builtinassets tag (the web UI is npm-built, not in the module) the API and /metrics serve
# as usual. Version -X flags as .promu.yml.
build_prometheus() {
  local m=github.com/prometheus/prometheus v c=github.com/prometheus/common/version app
  v=$(module_version prometheus "$m")
  # Upstream tags Prometheus X.Y.Z's Go module as v0.X0Y.Z / v0.XYY.Z (3.13.1: v0.313.1).
  app=$(echo "$v" | awk -F. '{printf "%s.%d.%s", substr($2, 1, 1), substr($2, 2), $3}')
  GOFLAGS="$GOFLAGS -tags=netgo,remove_all_sd,enable_kubernetes_sd" \
    gobuild prometheus prometheus "$m/cmd/prometheus" \
    "-X $c.Version=$app -X $c.Revision=$v -X $c.Branch=$v"
  mkdir -p "$bin/node-images"
  python3 "$here/node/oci_image.py" --name "localhost/appstack-e2e/prometheus:v$app" \
    --out "$bin/node-images/.prometheus.oci.tar" --user 65534:65534 --entrypoint /bin/prometheus \
    --file "$bin/prometheus:bin/prometheus:0755" --dir prometheus:0775
  mv -f "$bin/node-images/.prometheus.oci.tar" "$bin/node-images/prometheus.oci.tar"
  echo "built node-images/prometheus.oci.tar (localhost/appstack-e2e/prometheus:v$app)"
}

# Alertmanager: cmd/alertmanager, version -X flags as its .promu.yml. v0.31.1 is the newest release
# that builds from its module zip: from v0.32.0 on ui/web.go embeds `app/dist`, the npm-built UI,
# which the module zip does not hold (v0.35.0: "pattern app/dist: no matching files found");
# v0.31.1 still serves its UI from the committed vfsgen data (asset/assets_vfsdata.go).
build_alertmanager() {
  local m=github.com/prometheus/alertmanager v c=github.com/prometheus/common/version
  v=$(module_version alertmanager "$m")
  gobuild alertmanager alertmanager "$m/cmd/alertmanager" \
    "-X $c.Version=${v#v} -X $c.Revision=$v -X $c.Branch=$v"
  mkdir -p "$bin/node-images"
  python3 "$here/node/oci_image.py" --name "localhost/appstack-e2e/alertmanager:$v" \
    --out "$bin/node-images/.alertmanager.oci.tar" --user 65534:65534 --entrypoint /bin/alertmanager \
    --file "$bin/alertmanager:bin/alertmanager:0755" --dir alertmanager:0775
  mv -f "$bin/node-images/.alertmanager.oci.tar" "$bin/node-images/alertmanager.oci.tar"
  echo "built node-images/alertmanager.oci.tar (localhost/appstack-e2e/alertmanager:$v)"
}

# kube-state-metrics: the module's main package, version -X flags as its Makefile.
build_kube_state_metrics() {
  local m=k8s.io/kube-state-metrics/v2 v c=github.com/prometheus/common/version cg
  v=$(module_version kube-state-metrics "$m")
  cg=$(module_version kube-state-metrics k8s.io/client-go)
  gobuild kube-state-metrics kube-state-metrics "$m" \
    "-X $c.Version=$v -X $c.Revision=$v -X $c.Branch=$v -X $m/pkg/app.ClientGoVersion=$cg"
  mkdir -p "$bin/node-images"
  python3 "$here/node/oci_image.py" --name "localhost/appstack-e2e/kube-state-metrics:$v" \
    --out "$bin/node-images/.kube-state-metrics.oci.tar" --user 65534:65534 --entrypoint /kube-state-metrics \
    --file "$bin/kube-state-metrics:kube-state-metrics:0755"
  mv -f "$bin/node-images/.kube-state-metrics.oci.tar" "$bin/node-images/kube-state-metrics.oci.tar"
  echo "built node-images/kube-state-metrics.oci.tar (localhost/appstack-e2e/kube-state-metrics:$v)"
}

for fam in "${families[@]}"; do
  read -r -a outs <<<"$(binaries_of "$fam")"
  stamp=$(stamp_of "$fam")
  fresh=1
  [ "$(cat "$stamps/$fam" 2>/dev/null)" = "$stamp" ] || fresh=0
  for b in "${outs[@]}"; do [ -e "$bin/$b" ] || fresh=0; done
  if [ $fresh = 1 ]; then
    echo "e2e tools: $fam up to date (${outs[*]})"
    continue
  fi
  echo "e2e tools: building $fam (${outs[*]})"
  start=$(date +%s)
  "build_${fam//-/_}"
  echo "$stamp" >"$stamps/$fam"
  echo "e2e tools: $fam built in $(($(date +%s) - start)) s"
done
echo "e2e tools in $bin"
