// Command entraemu runs the local Entra ID + Microsoft Graph emulator
// (internal/entraemu) for make run, docker-compose and demos.
//
//	entraemu [-login-addr 127.0.0.1:9443] [-graph-addr 127.0.0.1:9444] [-seed FILE]
//	         [-ca-out FILE] [-ca-cert FILE -ca-key FILE] [-env-out FILE] [-control]
//	         [-public-host HOST] [-propagation-delay D] [-throttle-scale F] [-delta-page-size N]
//	         [-subscription-quota N]
//
// The first line on stdout is one JSON object describing the emulator (see
// internal/entraemu/README.md); human-readable lines follow.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tenantsync/tenantsync/internal/entraemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "entraemu:", err)
		os.Exit(1)
	}
}

// startInfo is the first stdout line.
type startInfo struct {
	AuthorityHost    string       `json:"authority_host"`
	GraphBaseURL     string       `json:"graph_base_url"`
	ControlURL       string       `json:"control_url,omitempty"`
	ClientID         string       `json:"client_id"`
	ClientSecret     string       `json:"client_secret,omitempty"`
	CAFile           string       `json:"ca_file"`
	OperatorTenantID string       `json:"operator_tenant_id"`
	Password         string       `json:"password"`
	Tenants          []tenantLine `json:"tenants"`
}

type tenantLine struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Domain      string `json:"domain"`
	Users       int    `json:"users"`
	Consented   bool   `json:"consented"`
	Admin       string `json:"admin,omitempty"`
	NonAdmin    string `json:"non_admin,omitempty"`
	Operator    string `json:"operator,omitempty"`
}

// run parses args, starts the emulator and serves until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("entraemu", flag.ContinueOnError)
	loginAddr := fs.String("login-addr", "127.0.0.1:9443", "login (authority) listen address")
	graphAddr := fs.String("graph-addr", "127.0.0.1:9444", "Graph listen address")
	seedFile := fs.String("seed", "", "JSON seed file (default: the built-in demo seed)")
	caOut := fs.String("ca-out", "", "write the CA certificate (PEM) here (default: a file in the temp dir)")
	caCert := fs.String("ca-cert", "", "load the CA certificate (PEM) from this file (with -ca-key)")
	caKey := fs.String("ca-key", "", "load the CA private key (PEM) from this file (with -ca-cert)")
	envOut := fs.String("env-out", "", "write KEY=VALUE lines wiring other processes to the emulator")
	control := fs.Bool("control", false, "enable the control API at <authority>/_emu")
	publicHost := fs.String("public-host", "", "host name to advertise and put in the TLS certificate (default: the listen host)")
	propagation := fs.Duration("propagation-delay", 0, "answer AADSTS700016 for this long after a consent")
	throttle := fs.Float64("throttle-scale", 1, "multiply the Graph throttling quotas")
	pageSize := fs.Int("delta-page-size", 0, "users or groups per delta page (default 200)")
	subQuota := fs.Int("subscription-quota", 0, "change-notification subscriptions per app across all tenants (default 50000)")
	logLevel := fs.String("log-level", getenvDefault(getenv, "LOG_LEVEL", "info"), "debug, info, warn or error")
	health := fs.String("healthcheck", "", "probe a running emulator at this authority URL and exit (for container health checks)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if *health != "" {
		return healthcheck(ctx, *health)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	seed := entraemu.DefaultSeed()
	if *seedFile != "" {
		var err error
		if seed, err = entraemu.LoadSeed(*seedFile); err != nil {
			return err
		}
	}
	cfg := entraemu.Config{Seed: seed, PropagationDelay: *propagation, ThrottleScale: *throttle, DeltaPageSize: *pageSize,
		Logger: logger, PublicHost: *publicHost, EnableControl: *control, SubscriptionQuota: *subQuota}
	if (*caCert == "") != (*caKey == "") {
		return errors.New("-ca-cert and -ca-key go together")
	}
	if *caCert != "" {
		var err error
		if cfg.CACertPEM, err = os.ReadFile(*caCert); err != nil {
			return fmt.Errorf("read CA certificate: %w", err)
		}
		if cfg.CAKeyPEM, err = os.ReadFile(*caKey); err != nil {
			return fmt.Errorf("read CA key: %w", err)
		}
	}
	s, err := entraemu.Start(cfg, *loginAddr, *graphAddr)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer s.Close()

	caFile := *caOut
	if caFile == "" {
		caFile = filepath.Join(os.TempDir(), "entraemu-ca.pem")
	}
	if err := os.WriteFile(caFile, s.CAPEM, 0o644); err != nil {
		return fmt.Errorf("write CA file: %w", err)
	}
	info := describe(s, seed, caFile)
	if *envOut != "" {
		env := fmt.Sprintf("ENTRA_AUTHORITY_HOST=%s\nGRAPH_BASE_URL=%s\nENTRA_CLIENT_ID=%s\nENTRA_CLIENT_SECRET=%s\nENTRA_CA_FILE=%s\nOPERATOR_TENANT_ID=%s\n",
			info.AuthorityHost, info.GraphBaseURL, info.ClientID, info.ClientSecret, info.CAFile, info.OperatorTenantID)
		if err := os.WriteFile(*envOut, []byte(env), 0o600); err != nil {
			return fmt.Errorf("write env file: %w", err)
		}
	}
	line, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode start line: %w", err)
	}
	fmt.Fprintf(stdout, "%s\n", line)
	printHuman(stdout, info)

	<-ctx.Done()
	logger.Info("shutting down")
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Close() }()
	select {
	case err := <-shutdown:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("shutdown timed out")
	}
}

func getenvDefault(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// describe is the start line: the wiring, and per tenant the users to sign
// in as. Those are picked from the users the seed names before the
// generated ones (which the emulator lists first), so the banner names the
// same admin@ and user@ accounts as the README and the seed file.
func describe(s *entraemu.Server, declared *entraemu.Seed, caFile string) startInfo {
	seed := s.Seed()
	named := map[string][]entraemu.User{}
	for _, t := range declared.Tenants {
		named[strings.ToLower(t.ID)] = t.Users
	}
	app := s.DefaultApp()
	info := startInfo{AuthorityHost: s.AuthorityHost, GraphBaseURL: s.GraphBaseURL, ControlURL: s.ControlURL,
		ClientID: app.ClientID, CAFile: caFile, OperatorTenantID: seed.HomeTenantID, Password: seed.DefaultPassword}
	if len(app.Secrets) > 0 {
		info.ClientSecret = app.Secrets[0].Value
	}
	consented := map[string]bool{}
	for _, t := range s.Tenants() {
		consented[t.ID] = t.Consented
	}
	for _, t := range seed.Tenants {
		tl := tenantLine{ID: strings.ToLower(t.ID), DisplayName: t.DisplayName, Users: len(t.Users), Consented: consented[strings.ToLower(t.ID)]}
		if len(t.Domains) > 0 {
			tl.Domain = t.Domains[0]
		}
		for _, u := range append(slices.Clone(named[tl.ID]), t.Users...) {
			switch {
			case u.Admin && tl.Admin == "":
				tl.Admin = u.UserPrincipalName
			case !u.Admin && len(u.AppRoles) > 0 && tl.Operator == "":
				tl.Operator = u.UserPrincipalName
			case !u.Admin && len(u.AppRoles) == 0 && tl.NonAdmin == "" && u.AccountEnabled:
				tl.NonAdmin = u.UserPrincipalName
			}
		}
		info.Tenants = append(info.Tenants, tl)
	}
	return info
}

func printHuman(w io.Writer, info startInfo) {
	fmt.Fprintf(w, "entraemu: Entra ID at %s, Microsoft Graph at %s/v1.0\n", info.AuthorityHost, info.GraphBaseURL)
	fmt.Fprintf(w, "  CA certificate: %s (set ENTRA_CA_FILE or SSL_CERT_FILE)\n", info.CAFile)
	if info.ControlURL != "" {
		fmt.Fprintf(w, "  control API:    %s\n", info.ControlURL)
	}
	fmt.Fprintf(w, "  app:            client_id %s (secret in the JSON line / -env-out file)\n", info.ClientID)
	fmt.Fprintf(w, "  password of every seeded user: %s\n", info.Password)
	for _, t := range info.Tenants {
		state := "not consented"
		if t.Consented {
			state = "consented"
		}
		fmt.Fprintf(w, "  tenant %-20s %s  %s  %d users (%s)\n", t.DisplayName, t.ID, t.Domain, t.Users, state)
		for _, u := range []struct{ label, upn string }{{"operator", t.Operator}, {"admin", t.Admin}, {"user", t.NonAdmin}} {
			if u.upn != "" {
				fmt.Fprintf(w, "    %-8s %s\n", u.label, u.upn)
			}
		}
	}
}

// healthcheck GETs the common discovery document of a running emulator.
// It skips certificate verification: it probes the process on its own
// host, sends nothing secret, and runs before the CA file is shared.
func healthcheck(ctx context.Context, authority string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(authority, "/")+"/common/v2.0/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return nil
}
