package entraemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is an Emulator listening on loopback (or given) addresses with TLS:
// the login host and the Graph host on separate listeners, as MSAL requires
// https and a tenant as the first path segment (docs/libraries.md §1).
type Server struct {
	*Emulator
	// AuthorityHost is the login base URL without trailing slash, e.g.
	// "https://127.0.0.1:41234" (ENTRA_AUTHORITY_HOST).
	AuthorityHost string
	// GraphBaseURL is the Graph base URL without /v1.0 (GRAPH_BASE_URL).
	GraphBaseURL string
	// ControlURL is the control API base, AuthorityHost+"/_emu" (empty when
	// the control API is not enabled).
	ControlURL string
	// CAPEM is the PEM certificate of the CA that signed the TLS certificate.
	CAPEM []byte
	// CertPool trusts CAPEM.
	CertPool *x509.CertPool

	servers   []*http.Server
	done      []chan error
	closeOnce sync.Once
	closeErr  error
}

// ControlPrefix is the path under which Start mounts the control API on
// the login listener.
const ControlPrefix = "/_emu"

// Start serves cfg on loginAddr and graphAddr ("" means 127.0.0.1:0).
func Start(cfg Config, loginAddr, graphAddr string) (*Server, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var authority *ca
	if len(cfg.CACertPEM) > 0 {
		authority, err = loadCA(cfg.CACertPEM, cfg.CAKeyPEM)
	} else {
		authority, err = newCA()
	}
	if err != nil {
		return nil, err
	}
	s := &Server{Emulator: e, CAPEM: authority.certPEM, CertPool: x509.NewCertPool()}
	s.CertPool.AddCert(authority.cert)
	e.notify.setRoots(authority.cert) // notification receivers behind the emulator's CA validate

	lnLogin, err := listen(loginAddr)
	if err != nil {
		return nil, err
	}
	lnGraph, err := listen(graphAddr)
	if err != nil {
		lnLogin.Close()
		return nil, err
	}
	host := cfg.PublicHost
	if host == "" {
		host = advertisedHost(lnLogin.Addr())
	}
	leaf, err := authority.leaf(host)
	if err != nil {
		lnLogin.Close()
		lnGraph.Close()
		return nil, err
	}
	s.AuthorityHost = "https://" + net.JoinHostPort(host, port(lnLogin.Addr()))
	s.GraphBaseURL = "https://" + net.JoinHostPort(host, port(lnGraph.Addr()))

	login := e.LoginHandler()
	var loginMux http.Handler = login
	if cfg.EnableControl {
		s.ControlURL = s.AuthorityHost + ControlPrefix
		control := e.ControlHandler()
		loginMux = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == ControlPrefix || strings.HasPrefix(r.URL.Path, ControlPrefix+"/") {
				control.ServeHTTP(w, r)
				return
			}
			login.ServeHTTP(w, r)
		})
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	for _, p := range []struct {
		ln net.Listener
		h  http.Handler
	}{{lnLogin, loginMux}, {lnGraph, e.GraphHandler()}} {
		// Every phase bounded, as on tenantsync's own listeners
		// (internal/httpserver, which this stdlib-only package does not
		// import); Write leaves room for Graph latency faults.
		srv := &http.Server{Handler: p.h, TLSConfig: tlsCfg.Clone(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug), IdleTimeout: 2 * time.Minute,
			// HTTP/1.1 only: Shutdown then closes idle connections at once
			// (HTTP/2 connections delay it by seconds), which keeps tests fast.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		done := make(chan error, 1)
		go func(ln net.Listener) { done <- srv.ServeTLS(ln, "", "") }(p.ln)
		s.servers = append(s.servers, srv)
		s.done = append(s.done, done)
	}
	return s, nil
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

func advertisedHost(a net.Addr) string {
	host, _, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return host
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// StartTest starts a Server on random loopback ports with the control API
// enabled and closes it in t.Cleanup.
func StartTest(t testing.TB, cfg Config) *Server {
	t.Helper()
	cfg.EnableControl = true
	s, err := Start(cfg, "", "")
	if err != nil {
		t.Fatalf("start entraemu: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// HTTPClient returns a client that trusts the emulator's CA, has no cookie
// jar and follows redirects like http.DefaultClient (set CheckRedirect to
// stop at the app's redirect_uri).
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: s.CertPool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			Proxy:               nil,
			MaxIdleConnsPerHost: 16,
		},
		Timeout: 60 * time.Second,
	}
}

// Close shuts both listeners down, waiting up to 5 seconds for requests.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) shutdown() error {
	s.Emulator.Close() // stop notification delivery first
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for i, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
		if err := <-s.done[i]; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
	}
	return errors.Join(errs...)
}
