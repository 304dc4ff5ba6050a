#!/usr/bin/env bash
# Install the Debian packages the real-node e2e tier needs (e2e/tools/build.sh node, e2e/node.py):
#   libseccomp-dev, pkg-config   runc is built with cgo and `-tags seccomp` (RuntimeDefault profiles)
#   gcc, libc6-dev               the pause binary is linked statically from kubernetes' pause.c
#   busybox-static               the test image's only binary
#   containernetworking-plugins  CNI bridge, host-local, loopback, portmap (/usr/lib/cni)
#   iptables, conntrack          used by the CNI plugins, kube-proxy and the kube-router image
#   ipset                        kube-router's firewall (its image carries this binary)
#   iproute2, util-linux         ip (bridge, routes), mount/umount
set -euo pipefail
packages=(libseccomp-dev pkg-config gcc libc6-dev busybox-static containernetworking-plugins
  iptables conntrack ipset iproute2 util-linux)
exec "$(dirname "$0")/apt-install.sh" "${packages[@]}"
