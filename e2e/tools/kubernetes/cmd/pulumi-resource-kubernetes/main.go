// Command pulumi-resource-kubernetes is the pulumi-kubernetes provider, built from its Go module.
//
// Upstream's main package (provider/v4/cmd/pulumi-resource-kubernetes) embeds
// schema-embed.json and terraform-mapping-embed.json, which its `go generate` step writes
// and which are not committed, so that package does not build from the module zip. This
// wrapper embeds the same two files, produced by e2e/tools/build.sh from the committed
// schema.json / terraform-mapping.json in the module cache (schema `version` set to the
// provider version, as upstream's generate.go does), and calls the same entry point:
// provider.Serve in provider/v4/pkg/provider/serve.go.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
