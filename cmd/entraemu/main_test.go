package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
)

func TestRunPrintsAndServes(t *testing.T) {
	dir := t.TempDir()
	caFile, envFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "emu.env")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-login-addr", "127.0.0.1:0", "-graph-addr", "127.0.0.1:0", "-ca-out", caFile,
			"-env-out", envFile, "-control", "-subscription-quota", "7", "-seed", "../../internal/entraemu/testdata/seed.example.json"}, func(string) string { return "" }, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	var info startInfo
	if err := json.Unmarshal(sc.Bytes(), &info); err != nil {
		t.Fatalf("first line is not JSON: %q: %v", sc.Text(), err)
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(info.AuthorityHost, "https://127.0.0.1:") || info.ClientID == "" || info.ClientSecret == "" ||
		info.CAFile != caFile || info.OperatorTenantID == "" || len(info.Tenants) == 0 || info.Tenants[1].Admin == "" {
		t.Errorf("start line = %+v", info)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ENTRA_AUTHORITY_HOST=", "GRAPH_BASE_URL=", "ENTRA_CLIENT_ID=", "ENTRA_CLIENT_SECRET=", "ENTRA_CA_FILE=", "OPERATOR_TENANT_ID="} {
		if !strings.Contains(string(env), k) {
			t.Errorf("env file lacks %s: %s", k, env)
		}
	}
	pem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := c.Get(info.AuthorityHost + "/" + info.OperatorTenantID + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("discovery: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}

// The banner of the demo seed names, per customer tenant, the admin@ and
// user@ accounts the README tells people to sign in as, not a generated
// user that happens to come first.
func TestDescribeNamesTheSeededUsers(t *testing.T) {
	seed := entraemu.DefaultSeed()
	s, err := entraemu.Start(entraemu.Config{Seed: seed}, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info := describe(s, seed, "ca.pem")
	seen := 0
	for _, tl := range info.Tenants {
		if tl.ID == strings.ToLower(entraemu.HomeTenantID) {
			if tl.Operator != "operator@tenantsync.example" {
				t.Errorf("home tenant operator %q", tl.Operator)
			}
			continue
		}
		seen++
		name := strings.TrimSuffix(tl.Domain, ".example")
		if tl.Admin != "admin@"+name+".example" || tl.NonAdmin != "user@"+name+".example" {
			t.Errorf("%s: admin %q, user %q; want admin@%s.example and user@%s.example", tl.DisplayName, tl.Admin, tl.NonAdmin, name, name)
		}
	}
	if seen != 4 {
		t.Errorf("%d customer tenants described, want 4: %+v", seen, info.Tenants)
	}
}
