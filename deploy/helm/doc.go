// Package helm holds the tests of pgrollup's Helm chart (deploy/helm/pgrollup):
// `helm lint` and `helm template` with several sets of values, every rendered
// manifest decoded strictly into its Kubernetes API type, the rendered config
// loaded by the config package and the containers' command lines parsed by
// the real binaries. The chart itself is YAML and templates; this package has
// no code of its own.
package helm
