package deploy

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tenantsync/tenantsync/internal/config"
	"github.com/tenantsync/tenantsync/internal/entraemu"
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithWorkingDirectory("../.."), cli.WithName("tenantsync"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// envNames is the set of variables a config type reads.
func envNames(c any) map[string]bool {
	out := map[string]bool{}
	for _, n := range config.Names(c) {
		out[n] = true
	}
	return out
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"postgres", "migrate", "entraemu", "server", "worker"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s missing: %v", name, err)
		}
	}
	pg, _ := p.GetService("postgres")
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 {
		t.Error("postgres has no healthcheck")
	}
	w, _ := p.GetService("worker")
	if w.Deploy == nil || w.Deploy.Replicas == nil || *w.Deploy.Replicas != 2 {
		t.Errorf("worker replicas = %v, want 2", w.Deploy)
	}
	for _, name := range []string{"server", "worker"} {
		s, _ := p.GetService(name)
		if d := s.DependsOn["migrate"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s must wait for migrate to complete, has %q", name, d.Condition)
		}
		if d := s.DependsOn["entraemu"]; d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s must wait for a healthy entraemu, has %q", name, d.Condition)
		}
		if s.HealthCheck == nil {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	m, _ := p.GetService("migrate")
	if d := m.DependsOn["postgres"]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("migrate must wait for a healthy postgres, has %q", d.Condition)
	}
}

// Every variable given to server and worker must be one the process reads,
// so a typo in compose cannot silently fall back to a default.
func TestComposeVariableNames(t *testing.T) {
	p := loadCompose(t)
	known := map[string]map[string]bool{
		"server":  envNames(config.Server{}),
		"worker":  envNames(config.Worker{}),
		"migrate": envNames(config.Migrate{}),
	}
	for name, vars := range known {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		for k := range s.Environment {
			if !vars[k] {
				t.Errorf("%s: compose sets %s, which %s does not read", name, k, name)
			}
		}
		if s.Environment["DATABASE_URL"] == nil {
			t.Errorf("%s: DATABASE_URL not set", name)
		}
	}
}

// The runtime image must be non-root with static binaries.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	// The bases are build arguments (local stand-ins on machines without a
	// registry) whose defaults are the official images users get.
	for _, re := range []string{`(?m)^FROM \$\{GO_IMAGE\} AS build$`, `(?m)^ARG GO_IMAGE=golang:1\.26-bookworm$`,
		`CGO_ENABLED=0`, `(?m)^USER nonroot`,
		`(?m)^FROM \$\{RUNTIME_IMAGE\}$`, `(?m)^ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot$`} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("Dockerfile lacks %s", re)
		}
	}
}

// The stack is wired to the emulator's seeded app and home tenant, and the
// app's redirect URIs cover the server's public URL.
func TestComposeMatchesEmulatorSeed(t *testing.T) {
	p := loadCompose(t)
	s, _ := p.GetService("server")
	get := func(k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	app := entraemu.DefaultSeed().Apps[0]
	if get("ENTRA_CLIENT_ID") != app.ClientID || get("ENTRA_CLIENT_SECRET") != app.Secrets[0].Value {
		t.Errorf("compose client %s does not match the emulator's seeded app %s", get("ENTRA_CLIENT_ID"), app.ClientID)
	}
	if get("OPERATOR_TENANT_ID") != entraemu.HomeTenantID {
		t.Errorf("OPERATOR_TENANT_ID %s is not the emulator's home tenant", get("OPERATOR_TENANT_ID"))
	}
	for _, path := range []string{"/auth/callback", "/connect/callback"} {
		if !slices.Contains(app.RedirectURIs, get("PUBLIC_BASE_URL")+path) {
			t.Errorf("%s%s is not a redirect URI of the seeded app", get("PUBLIC_BASE_URL"), path)
		}
	}
}

// docker-compose.local.yml (machines without a registry) swaps base images
// and nothing else: every built service builds the same Dockerfile with the
// local bases, Postgres runs the local image, the rest is the user's file.
func TestComposeLocalOverride(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml", "../../docker-compose.local.yml"},
		cli.WithWorkingDirectory("../.."), cli.WithName("tenantsync"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.local.yml does not load over docker-compose.yml: %v", err)
	}
	base := loadCompose(t)
	for name, s := range base.Services {
		l := local.Services[name]
		if name == "postgres" {
			if !regexp.MustCompile(`^tenantsync-local/postgres:`).MatchString(l.Image) {
				t.Errorf("postgres image %q, want the local one", l.Image)
			}
			l.Image = s.Image
		} else {
			if s.Build == nil || l.Build == nil || l.Build.Context != s.Build.Context || l.Build.Dockerfile != s.Build.Dockerfile {
				t.Errorf("%s: build %+v, want the user's %+v with other args", name, l.Build, s.Build)
				continue
			}
			for _, arg := range []string{"GO_IMAGE", "RUNTIME_IMAGE"} {
				if v := l.Build.Args[arg]; v == nil || !regexp.MustCompile(`^tenantsync-local/`).MatchString(*v) {
					t.Errorf("%s: build arg %s = %v, want a tenantsync-local image", name, arg, v)
				}
			}
			l.Build = s.Build
		}
		if !reflect.DeepEqual(s, l) {
			t.Errorf("%s: the local override changes more than the base images", name)
		}
	}
}

// docker-compose v1, the Compose of this project's machines, refuses the
// whole file over a top-level name: key; the name comes from .env.
func TestComposeV1Compatible(t *testing.T) {
	for _, f := range []string{"../../docker-compose.yml", "../../docker-compose.local.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^name:`).Match(b) {
			t.Errorf("%s has a top-level name:, which docker-compose v1 refuses", f)
		}
	}
	env, err := os.ReadFile("../../.env")
	if err != nil || !regexp.MustCompile(`(?m)^COMPOSE_PROJECT_NAME=tenantsync$`).Match(env) {
		t.Errorf(".env does not name the project tenantsync (%v)", err)
	}
}
