package helm

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// helmVersion is the helm that `bash scripts/deps.sh helm` builds; the
// folder is the one scripts/deps.sh names.
const helmVersion = "v4.3.2"

// chartDir is the chart under test, relative to this package.
const chartDir = "pgrollup"

// helmBinary returns the pinned helm. Without it the test skips on a
// developer's machine but fails under `make test` and in CI
// (pgcluster.Required), naming the command that builds it.
func helmBinary(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PGROLLUP_HELM_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("no cache directory for helm: %v", err)
		}
		dir = filepath.Join(base, "pgrollup", "helm", helmVersion)
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("helm %s is not built at %s: run `bash scripts/deps.sh helm` first (%v)", helmVersion, bin, err)
		if pgcluster.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// A helm built by go install knows only its minor version ("v4.3").
	out, err := exec.Command(bin, "version", "--short").CombinedOutput()
	if minor := helmVersion[:strings.LastIndexByte(helmVersion, '.')]; err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), minor) {
		t.Fatalf("%s version: %q, %v; want %s", bin, out, err, minor)
	}
	return bin
}

// chartCase is one set of values the chart is rendered with.
type chartCase struct {
	name string
	// values is a values file laid over values.yaml ("" for the defaults).
	values string
	// kinds are the kinds the rendering must hold, with their counts.
	kinds map[string]int
	// check looks at the decoded manifests further.
	check func(t *testing.T, m *manifests)
}

// rollupValues declares a table and a rollup and routing settings, so that
// the rendered config is checked with them as well as without.
const rollupValues = `
config:
  routing:
    worker_timeout: 2s
    max_staleness: 2h
  tables:
    - name: public.orders
  rollups:
    - name: orders_daily
      table: public.orders
      dimensions: [status]
      time_dimension: created_at
      granularity: day
      measures: [sum(amount), count(*)]
      refresh:
        every: 1h
`

var chartCases = []chartCase{
	{
		name: "defaults",
		kinds: map[string]int{"ConfigMap": 1, "Secret": 1, "ServiceAccount": 1, "PersistentVolumeClaim": 1,
			"Service": 2, "Deployment": 2, "PodDisruptionBudget": 2},
		check: func(t *testing.T, m *manifests) {
			cfg := m.config(t)
			if cfg.NATS.URL != "nats://nats:4222" || cfg.Listen != "0.0.0.0:7432" || cfg.Admin.Listen != "0.0.0.0:7480" {
				t.Errorf("config: nats %q listen %q admin %q", cfg.NATS.URL, cfg.Listen, cfg.Admin.Listen)
			}
			if dir, ok := cfg.Storage.LocalDir(); !ok || dir != "/var/lib/pgrollup/rollups" {
				t.Errorf("file storage: %q %v", dir, ok)
			}
			if got := m.container(t, "proxy").Command; !slices.Contains(got, "--build-worker=false") {
				t.Errorf("with workers the proxies build nothing: %q", got)
			}
		},
	},
	{
		name: "s3 external NATS secrets ServiceMonitor",
		values: rollupValues + `
nats:
  url: nats://nats.messaging.svc:4222
storage:
  type: s3
  s3:
    bucket: analytics
    prefix: /pgrollup/rollups/
    endpoint: http://minio.minio.svc:9000
    forcePathStyle: true
secrets:
  warehouseDSN: postgres://pgrollup:s3cr%40t@db.example:5432/shop?sslmode=require
  natsURL: nats://pgrollup:natspw@nats.messaging.svc:4222
  s3AccessKey: AKIAEXAMPLE
  s3SecretKey: secret/key+example
  adminToken: admin-token-example
serviceMonitor:
  enabled: true
  labels:
    release: kube-prometheus-stack
`,
		kinds: map[string]int{"ConfigMap": 1, "Secret": 1, "ServiceAccount": 1, "Service": 2, "Deployment": 2,
			"PodDisruptionBudget": 2, "ServiceMonitor": 1},
		check: func(t *testing.T, m *manifests) {
			cfg := m.config(t)
			bucket, prefix, ok := cfg.Storage.S3Location()
			if !ok || bucket != "analytics" || prefix != "pgrollup/rollups" {
				t.Errorf("s3 storage: %q %q %v", bucket, prefix, ok)
			}
			s3 := cfg.Storage.S3
			if s3.Endpoint != "http://minio.minio.svc:9000" || !s3.ForcePathStyle || s3.AccessKey != "AKIAEXAMPLE" || s3.SecretKey != "secret/key+example" {
				t.Errorf("s3 settings: %+v", s3)
			}
			if cfg.Warehouse.DSN != "postgres://pgrollup:s3cr%40t@db.example:5432/shop?sslmode=require" {
				t.Errorf("the Secret's DSN does not reach the config: %q", cfg.Warehouse.DSN)
			}
			if cfg.NATS.URL != "nats://pgrollup:natspw@nats.messaging.svc:4222" || cfg.Admin.Token != "admin-token-example" {
				t.Errorf("nats %q token %q", cfg.NATS.URL, cfg.Admin.Token)
			}
			if len(cfg.Rollups) != 1 || cfg.Routing.WorkerTimeout.String() != "2s" {
				t.Errorf("values' config not passed through: %d rollups, worker_timeout %s", len(cfg.Rollups), cfg.Routing.WorkerTimeout)
			}
			if strings.Contains(m.configText, "s3cr") || strings.Contains(m.configText, "secret/key") {
				t.Error("a secret is in the ConfigMap")
			}
			sm := m.serviceMonitor
			ep := sm.Spec.Endpoints[0]
			if ep.Port != "admin" || ep.Path != "/metrics" || ep.Authorization == nil || ep.Authorization.Credentials.Key != "admin-token" {
				t.Errorf("ServiceMonitor endpoint: %+v", ep)
			}
			if sm.Labels["release"] != "kube-prometheus-stack" {
				t.Errorf("ServiceMonitor labels: %v", sm.Labels)
			}
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			scraped := 0
			for _, s := range m.services {
				if sel.Matches(labels.Set(s.Labels)) && hasPort(s, "admin") {
					scraped++
				}
			}
			if scraped != 2 {
				t.Errorf("the ServiceMonitor scrapes %d Services with an admin port, want 2 (proxies and workers)", scraped)
			}
		},
	},
	{
		name: "no workers existing claim and Secret one proxy",
		values: `
workers:
  enabled: false
proxy:
  replicas: 1
  pdb:
    enabled: false
storage:
  file:
    existingClaim: shared-rollups
secrets:
  existingSecret: pgrollup-secrets
`,
		kinds: map[string]int{"ConfigMap": 1, "ServiceAccount": 1, "Service": 1, "Deployment": 1},
		check: func(t *testing.T, m *manifests) {
			c := m.container(t, "proxy")
			if !slices.Contains(c.Command, "--build-worker=true") {
				t.Errorf("without workers the proxy must build: %q", c.Command)
			}
			for _, v := range m.deployments[0].Spec.Template.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != "shared-rollups" {
					t.Errorf("claim %q, want the existing one", v.PersistentVolumeClaim.ClaimName)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef.Name != "pgrollup-secrets" {
					t.Errorf("%s from Secret %q, want the existing one", e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
			}
		},
	},
}

// TestChart lints and renders the chart with each case's values, decodes
// every manifest strictly into its API type, and checks that the pieces fit:
// selectors, ports, probes, Secret keys, the config and the command lines.
func TestChart(t *testing.T) {
	helm := helmBinary(t)
	bins := buildBinaries(t)
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			var valueArgs []string
			if tc.values != "" {
				// helm splits --values at commas, which a test's folder
				// name may hold.
				dir, err := os.MkdirTemp("", "pgrollup-chart-values-*")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				f := filepath.Join(dir, "values.yaml")
				if err := os.WriteFile(f, []byte(tc.values), 0o644); err != nil {
					t.Fatal(err)
				}
				valueArgs = []string{"--values", f}
			}
			if out, err := exec.Command(helm, append([]string{"lint", "--strict", chartDir}, valueArgs...)...).CombinedOutput(); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			out, err := exec.Command(helm, append([]string{"template", "rel", chartDir, "--namespace", "analytics"}, valueArgs...)...).Output()
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderrOf(err))
			}
			m, err := decodeManifests(out)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(m.kinds, tc.kinds) {
				t.Errorf("kinds %v, want %v", m.kinds, tc.kinds)
			}
			m.checkWiring(t)
			m.checkCommands(t, bins)
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// TestChartRefusesBadValues: values that cannot work fail the rendering with
// a message naming the value, instead of rendering a broken deployment.
func TestChartRefusesBadValues(t *testing.T) {
	helm := helmBinary(t)
	for _, tc := range []struct{ set, want string }{
		{"nats.url=", "nats.url is required"},
		{"storage.type=gcs", "storage.type must be s3 or file"},
		{"storage.type=s3,storage.s3.bucket=", "storage.s3.bucket is required"},
	} {
		out, err := exec.Command(helm, "template", "rel", chartDir, "--set", tc.set).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("--set %s: err %v, output %s; want an error with %q", tc.set, err, out, tc.want)
		}
	}
}

// TestCommandCheck: the command-line check itself fails on a flag the
// binaries do not have, so a passing TestChart means something.
func TestCommandCheck(t *testing.T) {
	bins := buildBinaries(t)
	if err := checkCommand(bins, []string{"pgrollup", "serve", "--config", "x.yaml", "--no-such-flag"}); err == nil {
		t.Error("an unknown serve flag passed")
	}
	if err := checkCommand(bins, []string{"pgrollup-worker", "--build-worker=false"}); err == nil {
		t.Error("a proxy flag passed for the worker")
	}
	if err := checkCommand(bins, []string{"pgrollup", "serve", "--build-worker=maybe"}); err == nil {
		t.Error("a bad boolean passed")
	}
	if err := checkCommand(bins, []string{"pgrollup", "serve", "--config", "x.yaml", "--shutdown-timeout", "30s"}); err != nil {
		t.Errorf("a good command line failed: %v", err)
	}
}

// manifests is one rendering, decoded.
type manifests struct {
	kinds          map[string]int
	configMaps     []corev1.ConfigMap
	secrets        []corev1.Secret
	services       []corev1.Service
	deployments    []appsv1.Deployment
	pdbs           []policyv1.PodDisruptionBudget
	claims         []corev1.PersistentVolumeClaim
	accounts       []corev1.ServiceAccount
	serviceMonitor *serviceMonitor
	// configText is the ConfigMap's pgrollup.yaml.
	configText string
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) that the chart writes; k8s.io/api has no type
// for it. Decoding strictly into it rejects any field the chart writes
// beyond these, so a typo cannot pass.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decodeManifests splits helm template's output into documents and decodes
// each strictly (unknown or duplicate fields are errors) into the type its
// apiVersion and kind name; a kind the chart should not make is an error.
func decodeManifests(out []byte) (*manifests, error) {
	m := &manifests{kinds: map[string]int{}}
	for i, doc := range strings.Split(string(out), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		var obj any
		var add func()
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			obj, add = o, func() { m.configMaps = append(m.configMaps, *o) }
		case "v1 Secret":
			o := &corev1.Secret{}
			obj, add = o, func() { m.secrets = append(m.secrets, *o) }
		case "v1 Service":
			o := &corev1.Service{}
			obj, add = o, func() { m.services = append(m.services, *o) }
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			obj, add = o, func() { m.accounts = append(m.accounts, *o) }
		case "v1 PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			obj, add = o, func() { m.claims = append(m.claims, *o) }
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			obj, add = o, func() { m.deployments = append(m.deployments, *o) }
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			obj, add = o, func() { m.pdbs = append(m.pdbs, *o) }
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &serviceMonitor{}
			obj, add = o, func() { m.serviceMonitor = o }
		default:
			return nil, fmt.Errorf("document %d: unexpected %s %s\n%s", i, tm.APIVersion, tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): strict decode: %w\n%s", i, tm.Kind, err, doc)
		}
		add()
		m.kinds[tm.Kind]++
	}
	if len(m.configMaps) != 1 {
		return nil, fmt.Errorf("%d ConfigMaps, want 1", len(m.configMaps))
	}
	m.configText = m.configMaps[0].Data["pgrollup.yaml"]
	return m, nil
}

// stripComments drops YAML comment lines, which helm leaves between documents.
func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// container returns the one container of the Deployment of component
// ("proxy" or "worker").
func (m *manifests) container(t *testing.T, component string) corev1.Container {
	t.Helper()
	for _, d := range m.deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] == component {
			return d.Spec.Template.Spec.Containers[0]
		}
	}
	t.Fatalf("no %s Deployment", component)
	return corev1.Container{}
}

// env returns the value the container's environment gives name, reading
// Secret references from the rendered Secret (absent keys are empty, as an
// optional reference makes them).
func (m *manifests) env(c corev1.Container) func(string) string {
	return func(name string) string {
		for _, e := range c.Env {
			if e.Name != name {
				continue
			}
			if e.ValueFrom == nil {
				return e.Value
			}
			for _, s := range m.secrets {
				if s.Name == e.ValueFrom.SecretKeyRef.Name {
					return string(s.Data[e.ValueFrom.SecretKeyRef.Key])
				}
			}
		}
		return ""
	}
}

// config loads the rendered config through the config package, with the
// proxy's environment as the pods see it.
func (m *manifests) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.ParseWithEnv([]byte(m.configText), "/etc/pgrollup/pgrollup.yaml", m.env(m.container(t, "proxy")))
	if err != nil {
		t.Fatalf("the rendered config does not load: %v\n%s", err, m.configText)
	}
	return cfg
}

// checkWiring checks what the API server would not: that selectors select
// pods, that ports, probes and mounts name things that exist, that every
// Secret reference is to a key of the Secret, and that the config loads for
// every container with its environment and names the ports the containers
// expose.
func (m *manifests) checkWiring(t *testing.T) {
	t.Helper()
	var pods []labels.Set
	for _, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		pod := labels.Set(d.Spec.Template.Labels)
		if !sel.Matches(pod) {
			t.Errorf("%s: selector %s does not match its pods' labels %v", d.Name, sel, pod)
		}
		pods = append(pods, pod)
		spec := d.Spec.Template.Spec
		if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pods may run as root", d.Name)
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v
		}
		for _, c := range spec.Containers {
			m.checkContainer(t, d.Name, c, volumes)
		}
	}
	for _, s := range m.services {
		matched := 0
		for _, p := range pods {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(p) {
				matched++
			}
		}
		if matched != 1 {
			t.Errorf("Service %s selects the pods of %d Deployments, want 1", s.Name, matched)
		}
	}
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		matched := 0
		for _, pod := range pods {
			if sel.Matches(pod) {
				matched++
			}
		}
		if matched != 1 || p.Spec.MaxUnavailable == nil {
			t.Errorf("PodDisruptionBudget %s: selects %d Deployments' pods, maxUnavailable %v", p.Name, matched, p.Spec.MaxUnavailable)
		}
	}
}

// checkContainer checks one container of Deployment name.
func (m *manifests) checkContainer(t *testing.T, name string, c corev1.Container, volumes map[string]corev1.Volume) {
	t.Helper()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	probes := map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe}
	for path, p := range probes {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || ports[p.HTTPGet.Port.String()] == 0 {
			t.Errorf("%s: probe on %s missing or on a port the container does not name: %+v", name, path, p)
		}
	}
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("%s: mount of undeclared volume %q", name, vm.Name)
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: no memory request or limit: %+v", name, c.Resources)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("%s: root file system is writable", name)
	}
	for _, e := range c.Env {
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			for _, s := range m.secrets {
				if _, ok := s.Data[ref.SecretKeyRef.Key]; s.Name == ref.SecretKeyRef.Name && !ok && (ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional) {
					t.Errorf("%s: %s needs key %q the Secret lacks", name, e.Name, ref.SecretKeyRef.Key)
				}
			}
		}
	}
	cfg, err := config.ParseWithEnv([]byte(m.configText), "/etc/pgrollup/pgrollup.yaml", m.env(c))
	if err != nil {
		t.Fatalf("%s: the rendered config does not load with the container's environment: %v\n%s", name, err, m.configText)
	}
	if c.Name == "worker" {
		// Builds, each in its own DuckDB, and the shared DuckDB of queries.
		need := int64(cfg.Worker.Concurrency+1) * cfg.Worker.DuckDBMemoryLimit.Int64()
		if limit := c.Resources.Limits.Memory().Value(); limit < need {
			t.Errorf("%s: memory limit %d below (concurrency + 1) x duckdb_memory_limit = %d", name, limit, need)
		}
	}
	if want := fmt.Sprintf("0.0.0.0:%d", ports["admin"]); cfg.Admin.Listen != want {
		t.Errorf("%s: admin.listen %q, but the container's admin port is %d", name, cfg.Admin.Listen, ports["admin"])
	}
	if p, ok := ports["postgres"]; ok && cfg.Listen != fmt.Sprintf("0.0.0.0:%d", p) {
		t.Errorf("%s: listen %q, but the container's postgres port is %d", name, cfg.Listen, p)
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		mounted = mounted || vm.MountPath == "/etc/pgrollup" && volumes[vm.Name].ConfigMap != nil
	}
	if !slices.Contains(c.Command, "/etc/pgrollup/pgrollup.yaml") || !mounted {
		t.Errorf("%s: the command %q does not read the mounted ConfigMap", name, c.Command)
	}
	if dir, ok := cfg.Storage.LocalDir(); ok {
		found := false
		for _, vm := range c.VolumeMounts {
			found = found || vm.MountPath == dir && volumes[vm.Name].PersistentVolumeClaim != nil
		}
		if !found {
			t.Errorf("%s: file storage %s is not a mounted claim", name, dir)
		}
	}
}

// checkCommands runs each container's command line through the real binary.
func (m *manifests) checkCommands(t *testing.T, bins map[string]string) {
	t.Helper()
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if err := checkCommand(bins, c.Command); err != nil {
				t.Errorf("%s: %v", d.Name, err)
			}
			if len(c.Args) > 0 {
				t.Errorf("%s: args %q besides the command", d.Name, c.Args)
			}
		}
	}
}

// checkCommand runs the binary a command line names with its flags and -h
// last: the flag package parses every flag before it, so an unknown flag or
// a bad value fails the parse before the help stops it, and nothing runs.
func checkCommand(bins map[string]string, command []string) error {
	if len(command) == 0 {
		return errors.New("no command")
	}
	bin, ok := bins[command[0]]
	if !ok {
		return fmt.Errorf("command %q is none of pgrollup's binaries", command[0])
	}
	cmd := exec.Command(bin, append(slices.Clone(command[1:]), "-h")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		return fmt.Errorf("%q -h: %v, want the help's exit status 2\n%s", command, err, stderr.String())
	}
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if strings.Contains(first, "flag provided but not defined") || strings.Contains(first, "invalid") ||
		strings.Contains(first, "unknown command") || strings.Contains(first, "unexpected argument") {
		return fmt.Errorf("%q: %s", command, first)
	}
	return nil
}

var (
	buildOnce sync.Once
	builtBins map[string]string
	buildErr  error
	buildDir  string
)

// buildBinaries builds pgrollup and pgrollup-worker once for the package's tests.
func buildBinaries(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pgrollup-helm-test-*")
		if buildErr != nil {
			return
		}
		bins := map[string]string{}
		for name, pkg := range map[string]string{"pgrollup": "./cmd/proxy", "pgrollup-worker": "./cmd/worker"} {
			bin := filepath.Join(buildDir, name)
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
				return
			}
			bins[name] = bin
		}
		builtBins = bins
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBins
}

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func hasPort(s corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}

// TestDecodeIsStrict: a field the API type does not have, a duplicate field
// and a kind the chart should not make each fail the decoding.
func TestDecodeIsStrict(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  pgrollup.yaml: \"{}\"\n"
	if _, err := decodeManifests([]byte(cm)); err != nil {
		t.Fatalf("a good ConfigMap: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":   cm + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replica: 2\n",
		"duplicate field": cm + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  name: t\n",
		"unexpected kind": cm + "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n",
		"wrong version":   cm + "---\napiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\n",
		"ServiceMonitor":  cm + "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: m\nspec:\n  endpoints:\n    - port: admin\n      bearerTokenFile: /x\n",
	} {
		if _, err := decodeManifests([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
