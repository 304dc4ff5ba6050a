// Command coredns is CoreDNS v1.15.0 (github.com/coredns/coredns) with the plugins a cluster DNS
// server without an upstream needs, registered the way upstream's own main does (coredns.go
// imports core/plugin, whose zplugin.go imports every plugin): here only these imports, so the
// cloud DNS providers (route53, azure, clouddns) and their SDKs are not compiled in. The
// directive order is upstream's (core/dnsserver/zdirectives.go); a Corefile naming a plugin
// that is not imported here is refused at startup. No `forward`: nothing is resolved off the
// machine (e2e/realnode/addons.py writes the Corefile).
package main

import (
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
