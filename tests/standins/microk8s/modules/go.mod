// Pins only (no Go is built from here): modules whose files the node snap ships.
//   github.com/cert-manager/cert-manager v1.19.1: the CRDs (deploy/crds) of the version MicroK8s
//   1.35's cert-manager addon installs. Its controller, webhook and cainjector are nested modules
//   (cmd/*/go.mod) that the module proxy does not serve, so they cannot be built here.
module oforest.test/microk8s-node/modules

go 1.25

require github.com/cert-manager/cert-manager v1.19.1
