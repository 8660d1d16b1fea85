package deploy_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/groupgate/groupgate"
	"github.com/groupgate/groupgate/api"
	"github.com/groupgate/groupgate/config"
	"github.com/groupgate/groupgate/techpass/techpasssim"
)

// The examples of several replicas on PostgreSQL, relative to this package's
// directory.
const (
	kubernetesPath    = "kubernetes/groupgate.yaml"
	composePath       = "compose/compose.yaml"
	simDockerfilePath = "compose/techpass-sim.Dockerfile"
)

// ---------------------------------------------------------------------------
// The configuration of a replica

// serverConfig is groupgate's configuration and newServerConfig returns its
// defaults: the one place this file names the package that holds them.
type serverConfig = config.Config

func newServerConfig() serverConfig { return config.DefaultConfig() }

// storeSettings are a configuration's store and postgres settings, read
// apart from the loader.
type storeSettings struct {
	Store    string `yaml:"store"`
	Postgres struct {
		DSN          string `yaml:"dsn"`
		PasswordFile string `yaml:"password_file"`
		PasswordEnv  string `yaml:"password_env"`
		MaxConns     int    `yaml:"max_conns"`
	} `yaml:"postgres"`
}

// replicaConfig is a replica example's configuration as groupgate loads it.
type replicaConfig struct {
	serverConfig
	// Shared is read apart from the loader, whether or not it knows them.
	Shared storeSettings
	// DSN is the postgres DSN's key=value pairs.
	DSN map[string]string
}

// secretFiles returns every secret file the configuration names, by
// setting: those of secretFiles and the database password.
func (c replicaConfig) secretFiles() map[string]string {
	files := secretFiles(c.serverConfig)
	if f := c.Shared.Postgres.PasswordFile; f != "" {
		files["postgres.password_file"] = f
	}
	return files
}

// listenPort is the port the configuration listens on.
func (c replicaConfig) listenPort() string {
	_, port, _ := net.SplitHostPort(c.Listen)
	return port
}

// loadReplicaConfig loads src as groupgate does (defaults, the file, then
// validation) and checks its store settings.
func loadReplicaConfig(src []byte) (replicaConfig, error) {
	var rc replicaConfig
	if err := yaml.Unmarshal(src, &rc.Shared); err != nil {
		return rc, err
	}
	body := src
	f, err := os.CreateTemp("", "groupgate-config-*.yaml")
	if err != nil {
		return rc, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(body); err != nil {
		f.Close()
		return rc, err
	}
	if err := f.Close(); err != nil {
		return rc, err
	}
	rc.serverConfig = newServerConfig()
	if err := rc.LoadFile(f.Name()); err != nil {
		return rc, err
	}
	if err := rc.Validate(); err != nil {
		return rc, err
	}
	rc.DSN, err = checkStoreSettings(rc.Shared)
	return rc, err
}

// checkStoreSettings checks the agreed shape of a shared store: PostgreSQL,
// a DSN with no password in it, the password from a file, a pool size. It
// returns the DSN's pairs.
func checkStoreSettings(st storeSettings) (map[string]string, error) {
	var problems []string
	if st.Store != "postgres" {
		problems = append(problems, fmt.Sprintf("store %q: several replicas need store: postgres", st.Store))
	}
	dsn, err := parseDSN(st.Postgres.DSN)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if _, ok := dsn["password"]; ok {
		problems = append(problems, "postgres.dsn holds a password: give it in password_file")
	}
	for _, k := range []string{"host", "user", "dbname", "sslmode"} {
		if dsn[k] == "" {
			problems = append(problems, fmt.Sprintf("postgres.dsn has no %s", k))
		}
	}
	if st.Postgres.PasswordFile == "" || st.Postgres.PasswordEnv != "" {
		problems = append(problems, "postgres: the password should come from password_file (and not the environment)")
	}
	if st.Postgres.MaxConns <= 0 {
		problems = append(problems, "postgres.max_conns should be set")
	}
	if len(problems) > 0 {
		return dsn, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return dsn, nil
}

// parseDSN reads a libpq key=value connection string (values may be
// single-quoted). A URL is refused: the examples use the key=value form.
func parseDSN(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.Contains(s, "://") {
		return out, fmt.Errorf("postgres.dsn %q: want key=value pairs", s)
	}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return out, fmt.Errorf("postgres.dsn: %q is not key=value", s)
		}
		k, rest = strings.TrimSpace(k), strings.TrimLeft(rest, " ")
		var v string
		if strings.HasPrefix(rest, "'") {
			end := strings.Index(rest[1:], "'")
			if end < 0 {
				return out, fmt.Errorf("postgres.dsn: unterminated quote")
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out[k] = v
	}
	return out, nil
}

func TestParseDSN(t *testing.T) {
	got, err := parseDSN("host=db port=5432  user=gg dbname='group gate' sslmode=verify-full")
	want := map[string]string{"host": "db", "port": "5432", "user": "gg", "dbname": "group gate", "sslmode": "verify-full"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseDSN = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"postgres://gg:pw@db/gg", "host", "dbname='x"} {
		if _, err := parseDSN(bad); err == nil {
			t.Errorf("parseDSN(%q) accepted", bad)
		}
	}
}

// probePaths returns the paths of the liveness and readiness operations of
// openapi.yaml, which must be public.
func probePaths(t *testing.T) (live, ready string) {
	t.Helper()
	var spec struct {
		Paths map[string]struct {
			Get struct {
				OperationID string `yaml:"operationId"`
			} `yaml:"get"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(groupgate.OpenAPISpec(), &spec); err != nil {
		t.Fatal(err)
	}
	for p, ops := range spec.Paths {
		switch ops.Get.OperationID {
		case "getHealth":
			live = p
		case "getReadiness":
			ready = p
		}
	}
	for op, a := range map[string]api.Access{"getHealth": api.Policy()["getHealth"], "getReadiness": api.Policy()["getReadiness"]} {
		if !a.Public {
			t.Errorf("%s needs a credential: a probe cannot send one", op)
		}
	}
	if live == "" || ready == "" {
		t.Fatalf("openapi.yaml has no getHealth (%q) or getReadiness (%q)", live, ready)
	}
	return live, ready
}

// ---------------------------------------------------------------------------
// Kubernetes

// k8sObject is one document of a manifest: what the lint reads of it.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []yaml.Node       `yaml:"matchExpressions"`
}

// selects reports whether the selector is not empty and selects pods with
// labels.
func (s labelSelector) selects(labels map[string]string) bool {
	if len(s.MatchLabels) == 0 || len(s.MatchExpressions) > 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type deploymentSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
	HostNetwork                   bool  `yaml:"hostNetwork"`
	SecurityContext               struct {
		RunAsNonRoot   *bool  `yaml:"runAsNonRoot"`
		RunAsUser      *int64 `yaml:"runAsUser"`
		RunAsGroup     *int64 `yaml:"runAsGroup"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers     []k8sContainer `yaml:"containers"`
	InitContainers []k8sContainer `yaml:"initContainers"`
	Volumes        []k8sVolume    `yaml:"volumes"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string     `yaml:"name"`
		Value     string     `yaml:"value"`
		ValueFrom *yaml.Node `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom         []yaml.Node `yaml:"envFrom"`
	LivenessProbe   *k8sProbe   `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe   `yaml:"readinessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Privileged               bool   `yaml:"privileged"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		Capabilities             struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
}

type keyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type k8sVolume struct {
	Name   string `yaml:"name"`
	Secret *struct {
		SecretName  string      `yaml:"secretName"`
		Items       []keyToPath `yaml:"items"`
		DefaultMode *int        `yaml:"defaultMode"`
	} `yaml:"secret"`
	ConfigMap *struct {
		Name  string      `yaml:"name"`
		Items []keyToPath `yaml:"items"`
	} `yaml:"configMap"`
	Projected *struct {
		DefaultMode *int `yaml:"defaultMode"`
		Sources     []struct {
			Secret *struct {
				Name  string      `yaml:"name"`
				Items []keyToPath `yaml:"items"`
			} `yaml:"secret"`
			ConfigMap *yaml.Node `yaml:"configMap"`
		} `yaml:"sources"`
	} `yaml:"projected"`
	HostPath *yaml.Node `yaml:"hostPath"`
}

type pdbSpec struct {
	MinAvailable   *int          `yaml:"minAvailable"`
	MaxUnavailable *int          `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

// parseManifest reads a multi-document manifest.
func parseManifest(src string) ([]k8sObject, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	var out []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return nil, err
		}
		if o.Kind != "" {
			out = append(out, o)
		}
	}
}

// The replicas and the disruptions the Kubernetes example must allow.
const (
	k8sReplicas   = 3
	k8sMinServing = 2 // through a voluntary disruption
)

// lintKubernetes checks the Kubernetes example: a Deployment of three
// replicas with probes on the real routes, a PodDisruptionBudget and a
// Service selecting its pods, its configuration from a ConfigMap (loaded
// with load), every secret the configuration names mounted read-only from a
// Secret and none in the environment or the manifest, and a pod as locked
// down as the image and the unit: non-root as the image's user, read-only
// root, no privilege escalation or capability. img is the linted
// Dockerfile. It returns every problem.
func lintKubernetes(src string, img dockerfile, live, ready string, load func([]byte) (replicaConfig, error)) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	objs, err := parseManifest(src)
	if err != nil {
		return []string{err.Error()}
	}
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	for _, o := range byKind["Secret"] {
		add("Secret %s is in the manifest: create Secrets from files, so no value is ever committed", o.Metadata.Name)
	}
	if len(byKind["Deployment"]) != 1 {
		add("want one Deployment, got %d", len(byKind["Deployment"]))
		return problems
	}
	var d deploymentSpec
	if err := byKind["Deployment"][0].Spec.Decode(&d); err != nil {
		return append(problems, err.Error())
	}
	pod := d.Template.Spec
	podLabels := d.Template.Metadata.Labels
	if d.Replicas == nil || *d.Replicas != k8sReplicas {
		add("Deployment replicas: want %d", k8sReplicas)
	}
	if !d.Selector.selects(podLabels) {
		add("the Deployment's selector %v does not select its pod template's labels %v", d.Selector.MatchLabels, podLabels)
	}

	// The disruption budget keeps two of the three serving.
	if len(byKind["PodDisruptionBudget"]) != 1 {
		add("want one PodDisruptionBudget, got %d", len(byKind["PodDisruptionBudget"]))
	} else {
		var pdb pdbSpec
		if err := byKind["PodDisruptionBudget"][0].Spec.Decode(&pdb); err != nil {
			add("PodDisruptionBudget: %v", err)
		}
		if !pdb.Selector.selects(podLabels) {
			add("the PodDisruptionBudget's selector %v does not select the Deployment's pods %v", pdb.Selector.MatchLabels, podLabels)
		}
		switch {
		case pdb.MinAvailable != nil && pdb.MaxUnavailable == nil:
			if *pdb.MinAvailable < k8sMinServing || *pdb.MinAvailable >= k8sReplicas {
				add("PodDisruptionBudget minAvailable %d: want at least %d and below the %d replicas (or no drain could proceed)", *pdb.MinAvailable, k8sMinServing, k8sReplicas)
			}
		case pdb.MaxUnavailable != nil && pdb.MinAvailable == nil:
			if *pdb.MaxUnavailable < 1 || k8sReplicas-*pdb.MaxUnavailable < k8sMinServing {
				add("PodDisruptionBudget maxUnavailable %d: want 1 to %d", *pdb.MaxUnavailable, k8sReplicas-k8sMinServing)
			}
		default:
			add("PodDisruptionBudget: want a whole-number minAvailable or maxUnavailable")
		}
	}

	if len(pod.Containers) != 1 || len(pod.InitContainers) > 0 {
		add("want the one groupgate container, got %d (and %d init)", len(pod.Containers), len(pod.InitContainers))
		return problems
	}
	c := pod.Containers[0]
	if i := strings.LastIndex(c.Image, ":"); i < 0 || strings.Contains(c.Image[i:], "/") || c.Image[i+1:] == "latest" {
		add("image %q: want a pinned tag, not latest or none", c.Image)
	}

	// The configuration comes from a ConfigMap mounted read-only, at the
	// path the container runs with.
	args := c.Args
	if args == nil {
		args = img.Cmd
	}
	configFile := configArg(append([]string{"groupgate"}, args...))
	if configFile == "" {
		add("the container runs without -config")
	}
	volumes := map[string]k8sVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.HostPath != nil {
			add("volume %s is a hostPath", v.Name)
		}
	}
	files := map[string]string{} // path in the container -> "secret" or "configmap:<name>/<key>"
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			add("volumeMount %s names no volume", m.Name)
			continue
		}
		mode := (*int)(nil)
		var secretItems, configItems []keyToPath
		configMap := ""
		switch {
		case v.Secret != nil:
			secretItems, mode = v.Secret.Items, v.Secret.DefaultMode
			if len(secretItems) == 0 {
				add("secret volume %s: list its items, so the file names the configuration uses are stated", v.Name)
			}
		case v.Projected != nil:
			mode = v.Projected.DefaultMode
			for _, s := range v.Projected.Sources {
				switch {
				case s.Secret != nil && len(s.Secret.Items) == 0:
					add("projected volume %s: list the items of secret %s", v.Name, s.Secret.Name)
				case s.Secret != nil:
					secretItems = append(secretItems, s.Secret.Items...)
				case s.ConfigMap != nil:
					add("projected volume %s mixes a ConfigMap with the secrets", v.Name)
				}
			}
		case v.ConfigMap != nil:
			configMap, configItems = v.ConfigMap.Name, v.ConfigMap.Items
		}
		if len(secretItems) > 0 {
			if !m.ReadOnly {
				add("volumeMount %s of secrets is not readOnly", m.Name)
			}
			if mode == nil || *mode&0o007 != 0 {
				add("volume %s: want a defaultMode that others cannot read, e.g. 0440", v.Name)
			}
		}
		for _, it := range secretItems {
			files[path.Join(m.MountPath, it.Path)] = "secret"
		}
		for _, it := range configItems {
			files[path.Join(m.MountPath, it.Path)] = "configmap:" + configMap + "/" + it.Key
		}
		if configMap != "" && len(configItems) == 0 {
			add("configMap volume %s: list its items", v.Name)
		}
		if configMap != "" && !m.ReadOnly {
			add("volumeMount %s of the configuration is not readOnly", m.Name)
		}
	}
	source, ok := files[configFile]
	cmName, key, _ := strings.Cut(strings.TrimPrefix(source, "configmap:"), "/")
	if !ok || !strings.HasPrefix(source, "configmap:") {
		add("-config %s is not a file of a mounted ConfigMap", configFile)
		return problems
	}
	var text string
	for _, o := range byKind["ConfigMap"] {
		if o.Metadata.Name == cmName {
			text, ok = o.Data[key]
		}
	}
	if !ok {
		add("ConfigMap %s with key %s is not in the manifest", cmName, key)
		return problems
	}
	cfg, err := load([]byte(text))
	if err != nil {
		add("ConfigMap %s %s: %v", cmName, key, err)
		return problems
	}
	for setting, f := range cfg.secretFiles() {
		if files[f] != "secret" {
			add("%s %s is not a file of a mounted Secret", setting, f)
		}
	}

	// Probes on the real routes, on the port the server listens on.
	port := cfg.listenPort()
	portOf := func(p string) string {
		for _, cp := range c.Ports {
			if p == cp.Name {
				return strconv.Itoa(cp.ContainerPort)
			}
		}
		return p
	}
	for _, pr := range []struct {
		name, want string
		probe      *k8sProbe
	}{{"livenessProbe", live, c.LivenessProbe}, {"readinessProbe", ready, c.ReadinessProbe}} {
		switch {
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			add("no %s httpGet", pr.name)
		case pr.probe.HTTPGet.Path != pr.want:
			add("%s on %s: want %s", pr.name, pr.probe.HTTPGet.Path, pr.want)
		case portOf(pr.probe.HTTPGet.Port) != port:
			add("%s on port %s: the server listens on %s", pr.name, pr.probe.HTTPGet.Port, port)
		}
	}

	// A Service in front of the pods.
	if len(byKind["Service"]) != 1 {
		add("want one Service, got %d", len(byKind["Service"]))
	} else {
		var svc serviceSpec
		if err := byKind["Service"][0].Spec.Decode(&svc); err != nil {
			add("Service: %v", err)
		}
		if !(labelSelector{MatchLabels: svc.Selector}).selects(podLabels) {
			add("the Service's selector %v does not select the Deployment's pods %v", svc.Selector, podLabels)
		}
		for _, p := range svc.Ports {
			if portOf(p.TargetPort) != port {
				add("Service port %d targets %s: the server listens on %s", p.Port, p.TargetPort, port)
			}
		}
	}

	// No secret in the environment.
	for _, e := range c.Env {
		if e.ValueFrom != nil || secretNameRE.MatchString(e.Name) {
			add("env %s: secrets are mounted as files, never passed in the environment", e.Name)
		}
	}
	if len(c.EnvFrom) > 0 {
		add("envFrom: secrets are mounted as files, never passed in the environment")
	}

	// As locked down as the image and the unit.
	sc := pod.SecurityContext
	uid := sc.RunAsUser
	if c.SecurityContext.RunAsUser != nil {
		uid = c.SecurityContext.RunAsUser
	}
	imageUID, _, _ := strings.Cut(img.User, ":")
	switch {
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		add("pod securityContext: want runAsNonRoot: true")
	case uid == nil || strconv.FormatInt(*uid, 10) != imageUID:
		add("runAsUser: want the image's user %s", imageUID)
	}
	if sc.SeccompProfile.Type != "RuntimeDefault" {
		add("pod securityContext: want seccompProfile RuntimeDefault")
	}
	csc := c.SecurityContext
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		add("container securityContext: want readOnlyRootFilesystem: true")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		add("container securityContext: want allowPrivilegeEscalation: false")
	}
	if csc.Privileged || len(csc.Capabilities.Add) > 0 || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		add("container securityContext: want no privilege and capabilities drop [ALL]")
	}
	if pod.HostNetwork {
		add("hostNetwork")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		add("want automountServiceAccountToken: false: the server never calls the Kubernetes API")
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= time.Duration(cfg.ShutdownGrace) {
		add("terminationGracePeriodSeconds is not above shutdown_grace %v", time.Duration(cfg.ShutdownGrace))
	}
	return problems
}

func mustLintKubernetes(t *testing.T, src string) {
	t.Helper()
	live, ready := probePaths(t)
	for _, p := range lintKubernetes(src, mustLintDockerfile(t), live, ready, loadReplicaConfig) {
		t.Errorf("%s: %s", kubernetesPath, p)
	}
}

func TestKubernetes(t *testing.T) {
	mustLintKubernetes(t, readFile(t, kubernetesPath))
}

// TestKubernetesLint shows the lint catches each mistake: every case breaks
// the real manifest in one way.
func TestKubernetesLint(t *testing.T) {
	live, ready := probePaths(t)
	img := mustLintDockerfile(t)
	runLintCases(t, readFile(t, kubernetesPath), func(src string) []string {
		return lintKubernetes(src, img, live, ready, loadReplicaConfig)
	}, []lintCase{
		{"two replicas", "replicas: 3", "replicas: 2", "replicas: want 3"},
		{"liveness on readiness", "path: /healthz", "path: /readyz", "livenessProbe on /readyz"},
		{"readiness on a made-up route", "path: /readyz", "path: /ready", "readinessProbe on /ready"},
		{"probe on another port", "              port: http\n            periodSeconds: 5", "              port: 9090\n            periodSeconds: 5", "readinessProbe on port 9090"},
		{"no readiness probe", "readinessProbe:", "startupProbe:", "no readinessProbe"},
		{"budget selects nothing", "  minAvailable: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: groupgate", "  minAvailable: 2\n  selector:\n    matchLabels:\n      app: groupgate", "PodDisruptionBudget's selector"},
		{"budget blocks every drain", "minAvailable: 2", "minAvailable: 3", "minAvailable 3"},
		{"budget allows two down", "minAvailable: 2", "maxUnavailable: 2", "maxUnavailable 2"},
		{"no budget", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgetX", "one PodDisruptionBudget"},
		{"service selects nothing", "  selector:\n    app.kubernetes.io/name: groupgate\n  ports:", "  selector:\n    app: groupgate\n  ports:", "Service's selector"},
		{"service on another port", "targetPort: http", "targetPort: 9090", "targets 9090"},
		{"secret in the environment", "          args:", "          env:\n            - name: GROUPGATE_KEK\n              valueFrom:\n                secretKeyRef: {name: groupgate-operator, key: kek}\n          args:", "env GROUPGATE_KEK"},
		{"secrets from envFrom", "          args:", "          envFrom:\n            - secretRef: {name: groupgate-ship}\n          args:", "envFrom"},
		{"secret inline", "apiVersion: apps/v1", "apiVersion: v1\nkind: Secret\nmetadata: {name: groupgate-postgres}\nstringData: {password: hunter2}\n---\napiVersion: apps/v1", "Secret groupgate-postgres is in the manifest"},
		{"secret not mounted", "                    - key: password\n                      path: postgres-password\n", "", "postgres.password_file"},
		{"secret file renamed", "path: ship-api-key", "path: api-key", "api_key_file"},
		{"secrets writable", "              mountPath: /run/credentials/groupgate\n              readOnly: true", "              mountPath: /run/credentials/groupgate", "not readOnly"},
		{"secrets world-readable", "defaultMode: 0440", "defaultMode: 0444", "defaultMode"},
		{"config not mounted", "mountPath: /etc/groupgate\n", "mountPath: /etc/gg\n", "-config /etc/groupgate/config.yaml"},
		{"config invalid", "    listen: 0.0.0.0:8080", "    listen: 0.0.0.0:8080\n    made_up: 1", "made_up"},
		{"config on bbolt", "    store: postgres", "    store: bbolt", "store: postgres"},
		{"password in the DSN", "sslmode=verify-full", "sslmode=verify-full password=hunter2", "a password"},
		{"root", "runAsUser: 65532", "runAsUser: 0", "runAsUser"},
		{"may run as root", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"capabilities kept", `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "drop [ALL]"},
		{"no seccomp", "type: RuntimeDefault", "type: Unconfined", "seccompProfile"},
		{"service account token", "automountServiceAccountToken: false", "automountServiceAccountToken: true", "automountServiceAccountToken"},
		{"short grace", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 5", "shutdown_grace"},
		{"latest image", "groupgate:1.0.0", "groupgate:latest", "pinned tag"},
	})
}

// ---------------------------------------------------------------------------
// Compose

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File        string `yaml:"file"`
		Environment string `yaml:"environment"`
		Content     string `yaml:"content"`
	} `yaml:"secrets"`
	Configs map[string]struct {
		File    string `yaml:"file"`
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     yaml.Node         `yaml:"env_file"`
	Deploy      struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Configs []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
	Secrets         []string  `yaml:"secrets"`
	Healthcheck     yaml.Node `yaml:"healthcheck"`
	User            string    `yaml:"user"`
	ReadOnly        bool      `yaml:"read_only"`
	CapDrop         []string  `yaml:"cap_drop"`
	SecurityOpt     []string  `yaml:"security_opt"`
	Privileged      bool      `yaml:"privileged"`
	StopGracePeriod string    `yaml:"stop_grace_period"`
}

// secretFile returns the name of the secret s grants at path f
// (/run/secrets/<name>), or "".
func (s composeService) secretFile(f string) string {
	name, ok := strings.CutPrefix(f, "/run/secrets/")
	if !ok || !slices.Contains(s.Secrets, name) {
		return ""
	}
	return name
}

// flags reads a command of -name=value flags.
func flags(cmd []string) map[string]string {
	out := map[string]string{}
	for _, a := range cmd {
		k, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		out[k] = v
	}
	return out
}

// The services of the compose example, and the gateway's replicas.
const (
	composeGateway   = "groupgate"
	composeSimulator = "techpass-sim"
	composePostgres  = "postgres"
	composeReplicas  = 2
)

// lintCompose checks the compose example: two replicas of the gateway on
// the postgres service, in front of the simulator, with a configuration
// (loaded with load from dir) that names the simulator's address, ids and
// credentials; secrets only as files; the gateway and the simulator as
// locked down as the image (the image's user, read-only root, no
// capability, no new privileges). It returns every problem.
func lintCompose(src, dir string, img dockerfile, load func([]byte) (replicaConfig, error)) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var cf composeFile
	dec := yaml.NewDecoder(strings.NewReader(src))
	if err := dec.Decode(&cf); err != nil {
		return []string{err.Error()}
	}
	gw, okG := cf.Services[composeGateway]
	sim, okS := cf.Services[composeSimulator]
	pg, okP := cf.Services[composePostgres]
	if !okG || !okS || !okP {
		return []string{fmt.Sprintf("want services %s, %s and %s", composeGateway, composeSimulator, composePostgres)}
	}

	// Secrets: files only, granted where used, never in the environment.
	for name, s := range cf.Secrets {
		if s.File == "" || s.Environment != "" || s.Content != "" {
			add("secret %s: want it from a file only", name)
		}
	}
	for svcName, s := range cf.Services {
		for _, name := range s.Secrets {
			if _, ok := cf.Secrets[name]; !ok {
				add("service %s uses secret %s, which is not defined", svcName, name)
			}
		}
		if s.EnvFile.Kind != 0 {
			add("service %s: env_file: secrets are mounted as files, never passed in the environment", svcName)
		}
		for k, v := range s.Environment {
			if secretNameRE.MatchString(k) && !(strings.HasSuffix(k, "_FILE") && s.secretFile(v) != "") {
				add("service %s: environment %s: pass a secret as a file (a _FILE variable naming /run/secrets/...)", svcName, k)
			}
		}
	}

	// The gateway: two replicas, its configuration from the file beside.
	if gw.Deploy.Replicas == nil || *gw.Deploy.Replicas != composeReplicas {
		add("%s: want deploy.replicas: %d", composeGateway, composeReplicas)
	}
	if gw.Build == nil || gw.Build.Dockerfile != "Dockerfile" || path.Clean(gw.Build.Context) != "../.." {
		add("%s: want it built from the repository's Dockerfile", composeGateway)
	}
	if sim.Build == nil || path.Clean(sim.Build.Context) != "../.." || path.Join("deploy", simDockerfilePath) != path.Clean(sim.Build.Dockerfile) {
		add("%s: want it built from %s", composeSimulator, simDockerfilePath)
	}
	if gw.DependsOn[composePostgres].Condition != "service_healthy" || pg.Healthcheck.Kind == 0 {
		add("%s: want it to wait for %s's healthcheck (depends_on condition service_healthy)", composeGateway, composePostgres)
	}
	if _, ok := gw.DependsOn[composeSimulator]; !ok {
		add("%s: want it to depend on %s", composeGateway, composeSimulator)
	}
	args := gw.Command
	if args == nil {
		args = img.Cmd
	}
	configFile := configArg(append([]string{"groupgate"}, args...))
	var cfgSrc string
	for _, c := range gw.Configs {
		if c.Target == configFile {
			cfgSrc = cf.Configs[c.Source].File
		}
	}
	if cfgSrc == "" {
		add("%s: -config %s is not a mounted config", composeGateway, configFile)
		return problems
	}
	body, err := os.ReadFile(filepath.Join(dir, cfgSrc))
	if err != nil {
		return append(problems, err.Error())
	}
	cfg, err := load(body)
	if err != nil {
		return append(problems, fmt.Sprintf("%s: %v", cfgSrc, err))
	}
	files := cfg.secretFiles()
	for setting, f := range files {
		if gw.secretFile(f) == "" {
			add("%s %s is not a secret granted to %s", setting, f, composeGateway)
		}
	}

	// The database: the DSN names the service, its user and database, and
	// the password the server reads is the one the database was given.
	if cfg.DSN["host"] != composePostgres || cfg.DSN["user"] != pg.Environment["POSTGRES_USER"] || cfg.DSN["dbname"] != pg.Environment["POSTGRES_DB"] {
		add("postgres.dsn host %s, user %s, dbname %s: want %s, and the service's POSTGRES_USER and POSTGRES_DB", cfg.DSN["host"], cfg.DSN["user"], cfg.DSN["dbname"], composePostgres)
	}
	if pw := pg.secretFile(pg.Environment["POSTGRES_PASSWORD_FILE"]); pw == "" || pw != gw.secretFile(cfg.Shared.Postgres.PasswordFile) {
		add("postgres.password_file %s is not the secret of the database's POSTGRES_PASSWORD_FILE", cfg.Shared.Postgres.PasswordFile)
	}

	// The simulator: the tenant's address, ids and credentials are its own.
	sf := flags(sim.Command)
	_, simPort, _ := net.SplitHostPort(sf["listen"])
	simURL := "http://" + net.JoinHostPort(composeSimulator, simPort)
	if len(cfg.Tenants) == 0 {
		add("the configuration has no tenant")
	}
	for _, tc := range cfg.Tenants {
		tp := tc.TechPass
		where := "tenant " + tc.Name
		if tc.Name != strings.ToUpper(sf["namespace"]) {
			add("%s: the simulator serves namespace %s", where, sf["namespace"])
		}
		if tp.APIURL != simURL || sf["api-url"] != simURL {
			add("%s: api_url %s and the simulator's -api-url %s: want %s", where, tp.APIURL, sf["api-url"], simURL)
		}
		if want := techpasssim.TokenURL(simURL, sf["directory-id"]); tp.TokenURL != want {
			add("%s: token_url %s: want %s", where, tp.TokenURL, want)
		}
		if tp.DirectoryID != sf["directory-id"] || tp.ClientID != sf["client-id"] {
			add("%s: directory_id and client_id are not the simulator's", where)
		}
		for _, pair := range [][2]string{
			{tp.ClientSecretFile, sf["client-secret-file"]},
			{tp.APIKeyFile, sf["api-key-file"]},
			{tp.WebhookSecretFile, sf["webhook-secret-file"]},
		} {
			if g, s := gw.secretFile(pair[0]), sim.secretFile(pair[1]); g == "" || g != s {
				add("%s: %s and the simulator's %s are not the same secret", where, pair[0], pair[1])
			}
		}
		u, err := url.Parse(sf["webhook-url"])
		if err != nil || u.Host != net.JoinHostPort(composeGateway, cfg.listenPort()) || u.Path != "/v1/tenants/"+tc.Name+"/webhooks/techpass" {
			add("%s: the simulator's -webhook-url %s is not the gateway's webhook route", where, sf["webhook-url"])
		}
	}

	// As locked down as the image.
	imageUID, _, _ := strings.Cut(img.User, ":")
	for _, name := range []string{composeGateway, composeSimulator} {
		s := cf.Services[name]
		if uid, gid, _ := strings.Cut(s.User, ":"); uid != imageUID || !isNonRootID(gid) {
			add("%s: user %q: want the image's numeric non-root user %s", name, s.User, img.User)
		}
		if !s.ReadOnly {
			add("%s: want read_only: true", name)
		}
		if !slices.Contains(s.CapDrop, "ALL") || s.Privileged {
			add("%s: want cap_drop: [ALL] and no privilege", name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			add("%s: want security_opt no-new-privileges:true", name)
		}
	}
	if d, err := time.ParseDuration(gw.StopGracePeriod); err != nil || d <= time.Duration(cfg.ShutdownGrace) {
		add("%s: stop_grace_period %q is not above shutdown_grace %v", composeGateway, gw.StopGracePeriod, time.Duration(cfg.ShutdownGrace))
	}
	return problems
}

func TestCompose(t *testing.T) {
	for _, p := range lintCompose(readFile(t, composePath), filepath.Dir(composePath), mustLintDockerfile(t), loadReplicaConfig) {
		t.Errorf("%s: %s", composePath, p)
	}
}

// TestComposeLint shows the lint catches each mistake: every case breaks
// the real compose file, or the configuration it mounts, in one way.
func TestComposeLint(t *testing.T) {
	img := mustLintDockerfile(t)
	dir := filepath.Dir(composePath)
	cfgSrc := readFile(t, filepath.Join(dir, "groupgate.yaml"))
	lint := func(src string) []string { return lintCompose(src, dir, img, loadReplicaConfig) }
	runLintCases(t, readFile(t, composePath), lint, []lintCase{
		{"one replica", "replicas: 2", "replicas: 1", "deploy.replicas: 2"},
		{"secret inline", "    file: ./secrets/kek", "    environment: GROUPGATE_KEK", "secret kek"},
		{"password in the environment", "POSTGRES_PASSWORD_FILE: /run/secrets/postgres-password", "POSTGRES_PASSWORD: hunter2", "environment POSTGRES_PASSWORD"},
		{"secret not granted", "      - operator-key\n", "", "operator_key_file"},
		{"simulator secret not granted", "      - ship-client-secret\n      - ship-api-key\n      - ship-webhook-secret\n    ports:\n      - \"127.0.0.1:8090", "      - ship-api-key\n      - ship-webhook-secret\n    ports:\n      - \"127.0.0.1:8090", "are not the same secret"},
		{"no database healthcheck wait", "condition: service_healthy", "condition: service_started", "service_healthy"},
		{"other simulator id", "-client-id=00000000-0000-4000-8000-0000000c1d00", "-client-id=00000000-0000-4000-8000-0000000c1d01", "client_id"},
		{"simulator on another port", "-listen=0.0.0.0:8081", "-listen=0.0.0.0:8082", "api_url"},
		{"webhooks elsewhere", "-webhook-url=http://groupgate:8080/", "-webhook-url=http://groupgate:9090/", "webhook-url"},
		{"config not mounted", "target: /etc/groupgate/config.yaml", "target: /etc/groupgate/other.yaml", "not a mounted config"},
		{"root gateway", "    user: \"65532:65532\"\n    read_only: true\n    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    # SIGTERM", "    user: \"0:0\"\n    read_only: true\n    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    # SIGTERM", "groupgate: user"},
		{"writable simulator", "    read_only: true\n    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n\n  groupgate:", "    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n\n  groupgate:", "techpass-sim: want read_only"},
		{"capabilities kept", "    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    # SIGTERM", "    security_opt: [\"no-new-privileges:true\"]\n    # SIGTERM", "cap_drop"},
		{"short grace", "stop_grace_period: 30s", "stop_grace_period: 5s", "stop_grace_period"},
	})

	// Mistakes in the configuration the compose file mounts.
	for _, tc := range []lintCase{
		{"password in the DSN", "sslmode=disable", "sslmode=disable password=hunter2", "a password"},
		{"other database user", "user=groupgate", "user=postgres", "postgres.dsn host"},
		{"other token URL", "token_url: http://techpass-sim:8081/", "token_url: http://techpass-sim:8082/", "token_url"},
		{"bbolt", "store: postgres", "store: bbolt", "store: postgres"},
	} {
		t.Run("config/"+tc.name, func(t *testing.T) {
			if !strings.Contains(cfgSrc, tc.old) {
				t.Fatalf("groupgate.yaml no longer contains %q; update this case", tc.old)
			}
			d := t.TempDir()
			for name, body := range map[string]string{"compose.yaml": readFile(t, composePath), "groupgate.yaml": strings.Replace(cfgSrc, tc.old, tc.new, 1)} {
				if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			problems := lintCompose(readFile(t, composePath), d, img, loadReplicaConfig)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("want a problem mentioning %q, got %q", tc.want, problems)
			}
		})
	}
}

// TestSimulatorDockerfile lints the simulator's image as the server's is
// linted, for its own command.
func TestSimulatorDockerfile(t *testing.T) {
	d, problems := lintDockerfileOf(readFile(t, simDockerfilePath), "./cmd/techpass-sim")
	for _, p := range problems {
		t.Errorf("%s: %s", simDockerfilePath, p)
	}
	if !slices.Equal(d.Entrypoint, []string{"/techpass-sim"}) || d.User != mustLintDockerfile(t).User {
		t.Errorf("ENTRYPOINT %q, USER %s: want [\"/techpass-sim\"] as the server's image's user", d.Entrypoint, d.User)
	}
}
