package archrules

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/tenantsync/tenantsync/"

// allowed lists, for every package of the module, the module's packages its
// non-test files may import, and why. A package missing here fails the test
// until its place in the layers is decided.
var allowed = map[string]struct {
	imports []string
	why     string
}{
	"internal/domain":     {nil, "the core types: every package imports it, it imports nothing internal"},
	"internal/retry":      {nil, "a leaf helper for Retry-After and waiting"},
	"internal/httpserver": {nil, "a leaf: timeouts for every listener"},
	"internal/metrics":    {nil, "a leaf: Prometheus collectors"},
	"internal/leaktest":   {nil, "the goroutine-leak TestMain of every package that starts goroutines"},
	"internal/queue":      {nil, "job kinds and arguments: the server enqueues without linking the sync"},
	"internal/cursor":     {nil, "the one page-cursor codec of the API and the console"},
	"internal/webhook":    {nil, "Standard Webhooks signing and the address rule, shared by the API (save time) and the worker (dial time)"},
	"internal/entraemu":   {nil, "the emulator is written from the protocol notes, never from our clients: a shared mistake must not hide on both sides"},
	"internal/deploy":     {nil, "tests of the deployment files only"},
	"internal/fleettest":  {nil, "tests of the real worker and emulator binaries only"},
	"internal/runscript":  {nil, "tests of scripts/run.sh (make run) with the real binaries only"},
	"internal/procstat":   {nil, "CPU time of processes and of Postgres, from /proc: the benchmarks price work with it"},
	"migrations":          {nil, "embedded SQL"},
	"web":                 {nil, "embedded templates and static files"},
	"internal/config":     {[]string{"internal/domain"}, "environment to typed configuration"},
	"internal/entra":      {[]string{"internal/domain", "internal/retry"}, "the Entra ID client speaks the domain's fault vocabulary"},
	"internal/graph":      {[]string{"internal/domain", "internal/retry"}, "the Graph client speaks the domain's fault vocabulary"},
	"internal/postgres":   {[]string{"internal/domain", "migrations"}, "all SQL; it knows no client and no queue"},
	"internal/onboarding": {[]string{"internal/domain"}, "connect rules: no echo, no SQL, small interfaces"},
	"internal/dirsync":    {[]string{"internal/domain"}, "the sync declares the interfaces that graph and postgres satisfy"},
	"internal/health":     {[]string{"internal/postgres"}, "readiness asks the database"},
	"internal/operator":   {[]string{"internal/domain", "internal/postgres", "internal/queue"}, "operator actions enqueue jobs"},
	"internal/api":        {[]string{"internal/cursor", "internal/domain", "internal/operator", "internal/postgres", "internal/webhook"}, "the JSON API over the store and operator actions"},
	"internal/jobs": {[]string{"internal/dirsync", "internal/domain", "internal/entra", "internal/graph", "internal/metrics",
		"internal/postgres", "internal/queue", "internal/retry", "internal/webhook"}, "River workers: the worker's composition of sync, clients and store"},
	"internal/webapp": {[]string{"internal/api", "internal/cursor", "internal/domain", "internal/entra", "internal/health", "internal/metrics",
		"internal/onboarding", "internal/operator", "internal/postgres", "internal/queue", "web"}, "the echo server; never the sync, the Graph client or the workers"},
	"internal/jobs/jobstest": {[]string{"internal/domain", "internal/entra", "internal/entraemu", "internal/graph", "internal/jobs",
		"internal/postgres"}, "test wiring of the worker against the emulator, and the copy-equals-emulator check"},
	"internal/postgres/pgtest":   {[]string{"internal/domain", "internal/postgres", "migrations"}, "test databases and the active-tenant factory"},
	"internal/postgres/rivergen": {nil, "generator of River's migration files, apart from the binaries"},
	"internal/archrules":         {nil, "this test"},
	"cmd/entraemu":               {[]string{"internal/entraemu"}, "composition root of the emulator"},
	"cmd/webhookrecv":            {nil, "a demo receiver: it verifies with the Standard Webhooks reference library, never our own signing code"},
	"cmd/server": {[]string{"internal/config", "internal/entra", "internal/health", "internal/httpserver", "internal/metrics",
		"internal/onboarding", "internal/operator", "internal/postgres", "internal/queue", "internal/webapp"}, "composition root of the server: no sync, no Graph client, no workers"},
	"cmd/worker": {[]string{"internal/config", "internal/entra", "internal/graph", "internal/health", "internal/httpserver",
		"internal/jobs", "internal/metrics", "internal/postgres"}, "composition root of the worker"},
}

// TestImportRules reads every non-test Go file of the module and fails on
// an import of a module package that allowed does not list for its package.
func TestImportRules(t *testing.T) {
	root := filepath.Join("..", "..")
	got := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		if got[pkg] == nil {
			got[pkg] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, module) {
				got[pkg][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 10 {
		t.Fatalf("found only %d packages under %s; is the walk rooted at the module?", len(got), root)
	}
	pkgs := make([]string, 0, len(got))
	for p := range got {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		rule, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no import rule; add it to allowed with its reason", pkg)
			continue
		}
		for imp := range got[pkg] {
			if !slices.Contains(rule.imports, imp) {
				t.Errorf("%s imports %s, which its rule does not allow (%s)", pkg, imp, rule.why)
			}
		}
	}
}

// TestRulesNameRealPackages keeps the table honest: every package it names
// exists.
func TestRulesNameRealPackages(t *testing.T) {
	for pkg, rule := range allowed {
		for _, p := range append([]string{pkg}, rule.imports...) {
			if _, err := os.Stat(filepath.Join("..", "..", filepath.FromSlash(p))); err != nil {
				t.Errorf("rule names %s, which does not exist", p)
			}
		}
	}
}
