// Package helm holds the test of Floe's Helm chart (./floe): it renders
// the chart with helm (pinned as a tool in this module's go.mod, so that
// Floe's own go.mod stays lean) for each value set in testdata/, and
// decodes every rendered object strictly into the Kubernetes API types.
// Value sets named fail-*.yaml must be refused by the chart.
package helm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

var helmBin string

// TestMain finds helm, built (and cached by the go command) from the
// version this module's go.mod pins as a tool.
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "tool", "-n", "helm").Output()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build helm (go tool -n helm):", err)
		os.Exit(1)
	}
	helmBin = strings.TrimSpace(string(out))
	os.Exit(m.Run())
}

// render runs helm template on the chart with a value set.
func render(t *testing.T, values string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, helmBin, "template", "floe", "./floe", "--namespace", "streaming", "-f", values)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, errOut.String())
	}
	return out.String(), nil
}

// rendered are the objects of one rendering, by kind.
type rendered struct {
	deployments     []appsv1.Deployment
	statefulSets    []appsv1.StatefulSet
	services        []corev1.Service
	serviceAccounts []corev1.ServiceAccount
	pdbs            []policyv1.PodDisruptionBudget
	hpas            []autoscalingv2.HorizontalPodAutoscaler
	clusterRoles    []rbacv1.ClusterRole
	bindings        []rbacv1.ClusterRoleBinding
}

// decodeStrict decodes one object into T, refusing unknown and
// duplicate fields.
func decodeStrict[T any](doc []byte, into *[]T) error {
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		return err
	}
	*into = append(*into, v)
	return nil
}

// parse splits helm's output into documents and decodes each strictly
// into its Kubernetes type; kinds the chart should never make fail.
func parse(t *testing.T, manifest string) rendered {
	t.Helper()
	var r rendered
	for _, doc := range strings.Split(manifest, "\n---") {
		body := []byte(strings.TrimPrefix(doc, "\n"))
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(body, &tm); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, body)
		}
		if tm.Kind == "" {
			if strings.TrimSpace(stripComments(string(body))) != "" {
				t.Fatalf("an object without kind:\n%s", body)
			}
			continue
		}
		var err error
		switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
		case "apps/v1 Deployment":
			err = decodeStrict(body, &r.deployments)
		case "apps/v1 StatefulSet":
			// Only for outage.enabled: stable pod names, no volumes
			// (checkAgents).
			err = decodeStrict(body, &r.statefulSets)
		case "v1 Service":
			err = decodeStrict(body, &r.services)
		case "v1 ServiceAccount":
			err = decodeStrict(body, &r.serviceAccounts)
		case "policy/v1 PodDisruptionBudget":
			err = decodeStrict(body, &r.pdbs)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			err = decodeStrict(body, &r.hpas)
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			err = decodeStrict(body, &r.clusterRoles)
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			err = decodeStrict(body, &r.bindings)
		default:
			t.Fatalf("unexpected object %s (agents are stateless: no volume claim)", gvk)
		}
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", tm.APIVersion, tm.Kind, err, body)
		}
	}
	return r
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// workload is what checkAgents reads of a Deployment or a StatefulSet.
type workload struct {
	Kind, Name string
	Selector   *metav1.LabelSelector
	Template   corev1.PodTemplateSpec
	Replicas   *int32
}

// workloads lists the rendering's Deployments and StatefulSets.
func (r rendered) workloads() []workload {
	var ws []workload
	for _, d := range r.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Template, d.Spec.Replicas})
	}
	for _, s := range r.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Template, s.Spec.Replicas})
	}
	return ws
}

// checkAgents checks what every rendering must hold: stateless
// Deployments (or StatefulSets without volumes) whose readiness follows
// the drain, Services, budgets and autoscalers that select them, and
// secrets never inline.
func checkAgents(t *testing.T, r rendered) {
	t.Helper()
	ws := r.workloads()
	if len(ws) == 0 {
		t.Fatal("no Deployment")
	}
	for _, s := range r.statefulSets {
		if len(s.Spec.VolumeClaimTemplates) > 0 {
			t.Errorf("StatefulSet %s claims volumes: agents are stateless", s.Name)
		}
		if !slices.ContainsFunc(r.services, func(svc corev1.Service) bool {
			return svc.Name == s.Spec.ServiceName && svc.Spec.ClusterIP == corev1.ClusterIPNone
		}) {
			t.Errorf("StatefulSet %s: serviceName %q is not a headless Service of the rendering", s.Name, s.Spec.ServiceName)
		}
	}
	byName := map[string]workload{}
	for _, d := range ws {
		byName[d.Name] = d
		sel, err := metav1.LabelSelectorAsSelector(d.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Template.Labels)) {
			t.Errorf("%s: selector %v does not match its pods' labels %v", d.Name, d.Selector, d.Template.Labels)
		}
		spec := d.Template.Spec
		if len(spec.Volumes) > 0 {
			t.Errorf("%s has volumes: agents are stateless", d.Name)
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= 10 {
			t.Errorf("%s: termination grace period %v, want more than the 10 s drain", d.Name, g)
		}
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", d.Name, len(spec.Containers))
		}
		c := spec.Containers[0]
		if len(c.VolumeMounts) > 0 {
			t.Errorf("%s mounts volumes", d.Name)
		}
		if len(c.Args) == 0 || c.Args[0] != "agent" || !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--roles=") }) {
			t.Errorf("%s: args %q", d.Name, c.Args)
		}
		p := c.ReadinessProbe
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s: readiness is not /healthz on the admin port (it answers 503 once the drain starts): %+v", d.Name, p)
		}
		if l := c.LivenessProbe; l != nil && l.HTTPGet != nil && l.HTTPGet.Path == "/healthz" {
			t.Errorf("%s: liveness on /healthz restarts agents when the metadata store fails", d.Name)
		}
		env := envOf(c)
		for _, name := range []string{"FLOE_BUCKET", "FLOE_METASTORE", "POD_IP", "FLOE_NODE_NAME"} {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: no %s", d.Name, name)
			}
		}
		for _, name := range []string{"FLOE_PEER_SECRET", "FLOE_ADMIN_TOKEN"} {
			if e, ok := env[name]; ok && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: %s is not taken from a Secret", d.Name, name)
			}
		}
		if m := env["FLOE_METASTORE"]; strings.Contains(m.Value, ":") && strings.Contains(m.Value, "@") && strings.Count(strings.SplitN(m.Value, "@", 2)[0], ":") > 1 {
			t.Errorf("%s: the metastore URL with its password is inline", d.Name)
		}
		for name, e := range env {
			if strings.HasPrefix(name, "FLOE_") && strings.Contains(e.Value, "e+") {
				t.Errorf("%s: %s=%q: a number in exponent form, which flags refuse", d.Name, name, e.Value)
			}
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		if !ports["kafka"] || !ports["peer"] || !ports["admin"] {
			t.Errorf("%s: ports %v", d.Name, c.Ports)
		}
	}
	podLabels := func(sel labels.Selector) []string {
		var names []string
		for _, d := range ws {
			if sel.Matches(labels.Set(d.Template.Labels)) {
				names = append(names, d.Name)
			}
		}
		return names
	}
	for _, s := range r.services {
		if got := podLabels(labels.SelectorFromSet(s.Spec.Selector)); len(got) != len(ws) {
			t.Errorf("service %s selects %v, want every agent", s.Name, got)
		}
	}
	for _, p := range r.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if got := podLabels(sel); len(got) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want one Deployment", p.Name, got)
		}
	}
	for _, h := range r.hpas {
		d, ok := byName[h.Spec.ScaleTargetRef.Name]
		if !ok || h.Spec.ScaleTargetRef.Kind != d.Kind {
			t.Errorf("HPA %s scales %v, not one of the Deployments or StatefulSets", h.Name, h.Spec.ScaleTargetRef)
			continue
		}
		if d.Replicas != nil {
			t.Errorf("%s %s sets replicas under an HPA", d.Kind, d.Name)
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA %s is not on CPU", h.Name)
		}
		if _, ok := d.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Errorf("HPA %s on CPU, but %s requests no CPU", h.Name, d.Name)
		}
	}
}

// roles returns each Deployment's (and StatefulSet's) --roles.
func roles(r rendered) map[string]string {
	m := map[string]string{}
	for _, d := range r.workloads() {
		for _, a := range d.Template.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(a, "--roles="); ok {
				m[d.Name] = v
			}
		}
	}
	return m
}

func TestChartRenders(t *testing.T) {
	for _, tc := range []struct {
		values string
		check  func(t *testing.T, r rendered)
	}{
		{"testdata/minimal.yaml", func(t *testing.T, r rendered) {
			if got := roles(r); len(got) != 1 || got["floe-agent"] != "produce,fetch,jobs" {
				t.Errorf("roles %v", got)
			}
			if len(r.pdbs) != 1 || len(r.hpas) != 0 || len(r.services) != 1 || len(r.serviceAccounts) != 1 {
				t.Errorf("%d PDBs, %d HPAs, %d services, %d service accounts", len(r.pdbs), len(r.hpas), len(r.services), len(r.serviceAccounts))
			}
			// The zone comes from the node's label: the agent reads it with
			// the service account, which may get nodes.
			env := envOf(r.deployments[0].Spec.Template.Spec.Containers[0])
			if env["FLOE_ZONE_FROM_NODE_LABEL"].Value != "topology.kubernetes.io/zone" || env["FLOE_NODE_NAME"].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
				t.Errorf("zone env %+v", env)
			}
			if len(r.clusterRoles) != 1 || r.clusterRoles[0].Rules[0].Resources[0] != "nodes" || !slices.Equal(r.clusterRoles[0].Rules[0].Verbs, []string{"get"}) ||
				len(r.bindings) != 1 || r.bindings[0].Subjects[0].Name != r.serviceAccounts[0].Name || r.bindings[0].Subjects[0].Namespace != "streaming" {
				t.Errorf("RBAC for the node label: %+v %+v", r.clusterRoles, r.bindings)
			}
			if d := r.deployments[0]; *d.Spec.Replicas != 3 || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
				t.Errorf("replicas %d, strategy %+v", *d.Spec.Replicas, d.Spec.Strategy)
			}
			// Producing through an outage is opt-in.
			if len(r.statefulSets) != 0 || len(r.services) != 1 {
				t.Errorf("%d StatefulSets, %d Services without outage.enabled", len(r.statefulSets), len(r.services))
			}
			for _, a := range r.deployments[0].Spec.Template.Spec.Containers[0].Args {
				if strings.Contains(a, "outage") {
					t.Errorf("arg %s without outage.enabled", a)
				}
			}
		}},
		{"testdata/outage.yaml", func(t *testing.T, r rendered) {
			// The writers produce: a StatefulSet, each pod under its own
			// name; readers and jobs stay Deployments.
			if len(r.statefulSets) != 1 || r.statefulSets[0].Name != "floe-writers" || len(r.deployments) != 2 {
				t.Fatalf("StatefulSets %d, Deployments %d; want floe-writers alone a StatefulSet", len(r.statefulSets), len(r.deployments))
			}
			s := r.statefulSets[0]
			if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement || s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
				t.Errorf("pod management %q, update strategy %+v", s.Spec.PodManagementPolicy, s.Spec.UpdateStrategy)
			}
			c := s.Spec.Template.Spec.Containers[0]
			for _, want := range []string{"--produce-through-metastore-outage", "--outage-manifest-name=$(POD_NAME)",
				"--outage-queue-bytes=536870912", "--outage-queue-segments=10000", "--outage-max-duration=2m"} {
				if !slices.Contains(c.Args, want) {
					t.Errorf("writers: no %s in %q", want, c.Args)
				}
			}
			// $(POD_NAME) in args expands from the container's env: the
			// pod's own name, stable across its restarts.
			if e := envOf(c)["POD_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("POD_NAME: %+v, want the pod's metadata.name", e)
			}
			for _, d := range r.deployments {
				for _, a := range d.Spec.Template.Spec.Containers[0].Args {
					if strings.Contains(a, "outage") {
						t.Errorf("%s (no produce role): arg %s", d.Name, a)
					}
				}
			}
			var hpaKinds []string
			for _, h := range r.hpas {
				hpaKinds = append(hpaKinds, h.Spec.ScaleTargetRef.Kind+"/"+h.Spec.ScaleTargetRef.Name)
			}
			slices.Sort(hpaKinds)
			if !slices.Equal(hpaKinds, []string{"Deployment/floe-readers", "StatefulSet/floe-writers"}) {
				t.Errorf("HPAs scale %v", hpaKinds)
			}
			if len(r.services) != 2 {
				t.Errorf("%d Services, want the bootstrap one and the StatefulSet's headless one", len(r.services))
			}
		}},
		{"testdata/secrets.yaml", func(t *testing.T, r rendered) {
			c := r.deployments[0].Spec.Template.Spec.Containers[0]
			env := envOf(c)
			for name, secret := range map[string]string{"FLOE_METASTORE": "floe-postgres", "FLOE_PEER_SECRET": "floe-peer", "FLOE_ADMIN_TOKEN": "floe-admin"} {
				if e := env[name]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret {
					t.Errorf("%s: %+v, want from Secret %s", name, e, secret)
				}
			}
			if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "floe-bucket" {
				t.Errorf("bucket credentials: %+v", c.EnvFrom)
			}
			for name, want := range map[string]string{"FLOE_ZONE": "us-east-1a", "FLOE_LINGER": "100ms", "FLOE_CACHE_BYTES": "1073741824", "FLOE_AUTO_CREATE_TOPICS": "false", "GOMEMLIMIT": "900MiB"} {
				if env[name].Value != want {
					t.Errorf("%s=%q, want %q", name, env[name].Value, want)
				}
			}
			if _, ok := env["FLOE_ZONE_FROM_NODE_LABEL"]; ok || len(r.clusterRoles) != 0 {
				t.Error("a fixed zone still reads the node's label")
			}
			if c.Image != "registry.example.com/floe:v0.1.0" {
				t.Errorf("image %s", c.Image)
			}
			if len(r.hpas) != 1 || *r.hpas[0].Spec.MinReplicas != 5 || r.hpas[0].Spec.MaxReplicas != 20 {
				t.Errorf("HPAs %+v", r.hpas)
			}
			if r.serviceAccounts[0].Annotations["eks.amazonaws.com/role-arn"] == "" {
				t.Error("service account annotations dropped")
			}
		}},
		{"testdata/split.yaml", func(t *testing.T, r rendered) {
			want := map[string]string{"floe-writers": "produce", "floe-readers": "fetch", "floe-jobs": "jobs"}
			if got := roles(r); len(got) != 3 || got["floe-writers"] != want["floe-writers"] || got["floe-readers"] != want["floe-readers"] || got["floe-jobs"] != want["floe-jobs"] {
				t.Errorf("roles %v, want %v", got, want)
			}
			if len(r.pdbs) != 3 || len(r.hpas) != 2 {
				t.Errorf("%d PDBs, %d HPAs; want 3 and 2 (writers, readers)", len(r.pdbs), len(r.hpas))
			}
			if len(r.serviceAccounts) != 0 || r.deployments[0].Spec.Template.Spec.ServiceAccountName != "floe-agents" || r.bindings[0].Subjects[0].Name != "floe-agents" {
				t.Error("an existing service account is not used")
			}
		}},
	} {
		t.Run(filepath.Base(tc.values), func(t *testing.T) {
			out, err := render(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			r := parse(t, out)
			checkAgents(t, r)
			tc.check(t, r)
		})
	}
}

// TestChartLints: helm lint finds nothing to say of the chart.
func TestChartLints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, values := range []string{"testdata/minimal.yaml", "testdata/outage.yaml"} {
		out, err := exec.CommandContext(ctx, helmBin, "lint", "--strict", "./floe", "-f", values).CombinedOutput()
		if err != nil {
			t.Fatalf("helm lint with %s: %v\n%s", values, err, out)
		}
	}
}

func TestChartRefuses(t *testing.T) {
	for values, want := range map[string]string{
		"testdata/fail-no-bucket.yaml":                 "bucket.url is required",
		"testdata/fail-embedded-metastore.yaml":        "embedded store serves one process",
		"testdata/fail-hpa-without-cpu-request.yaml":   "needs resources.requests.cpu",
		"testdata/fail-config-sets-roles.yaml":         "config.roles: set by the chart",
		"testdata/fail-no-deployment.yaml":             "enable at least one",
		"testdata/fail-config-sets-manifest-name.yaml": "config.outage-manifest-name: set by the chart from outage.*",
	} {
		t.Run(filepath.Base(values), func(t *testing.T) {
			_, err := render(t, values)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want one with %q", err, want)
			}
		})
	}
	// Every fail-*.yaml has its expected error above.
	files, _ := filepath.Glob("testdata/fail-*.yaml")
	if len(files) != 6 {
		t.Errorf("%d fail-*.yaml value sets, the test knows 6", len(files))
	}
}
