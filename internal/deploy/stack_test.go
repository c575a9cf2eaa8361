//go:build composetest

package deploy

// The compose test (`make compose-test`, scripts/compose-test.sh): the stack
// of docker-compose.yml built, started and driven through its published
// ports, as a user does after `docker compose up --build`. It needs a Docker
// engine; the build tag keeps it out of `make test`.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tenantsync/tenantsync/internal/entraemu"
)

const (
	project   = "tenantsync"
	serverURL = "http://localhost:8080"
	// The browser resolves *.localhost to this machine itself; Go does not,
	// so hostDial sends the test's own requests there.
	emuLogin = "https://entraemu.localhost:9443"
)

// stack runs compose commands on the project, from the repository root.
type stack struct {
	t     *testing.T
	cmd   []string // "docker compose" or "docker-compose"
	files []string
}

func newStack(t *testing.T) *stack {
	cmd := strings.Fields(os.Getenv("COMPOSE"))
	if len(cmd) == 0 {
		if exec.Command("docker", "compose", "version").Run() == nil {
			cmd = []string{"docker", "compose"}
		} else if exec.Command("docker-compose", "version").Run() == nil {
			cmd = []string{"docker-compose"}
		} else {
			t.Fatal("neither `docker compose` nor `docker-compose` works")
		}
	}
	files := strings.Split(os.Getenv("COMPOSE_FILES"), ",")
	if os.Getenv("COMPOSE_FILES") == "" {
		files = []string{"docker-compose.yml", "docker-compose.local.yml"}
	}
	return &stack{t: t, cmd: cmd, files: files}
}

func (s *stack) compose(args ...string) (string, error) {
	a := append([]string{}, s.cmd[1:]...)
	a = append(a, "-p", project)
	for _, f := range s.files {
		a = append(a, "-f", f)
	}
	a = append(a, args...)
	c := exec.Command(s.cmd[0], a...)
	c.Dir = "../.."
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

func (s *stack) must(args ...string) string {
	s.t.Helper()
	start := time.Now()
	out, err := s.compose(args...)
	if err != nil {
		s.t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	s.t.Logf("compose %s: %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	return out
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// ctr is what the test reads of a container of the project.
type ctr struct {
	ID, Name, Service, Status, Health string
	ExitCode                          int
	StartedAt, FinishedAt             time.Time
	Hostname                          string
}

func containers(t *testing.T) []ctr {
	t.Helper()
	ids := strings.Fields(docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project))
	if len(ids) == 0 {
		return nil
	}
	var raw []struct {
		ID     string
		Name   string
		Config struct {
			Hostname string
			Labels   map[string]string
		}
		State struct {
			Status     string
			ExitCode   int
			StartedAt  time.Time
			FinishedAt time.Time
			Health     *struct{ Status string }
		}
	}
	if err := json.Unmarshal([]byte(docker(t, append([]string{"inspect"}, ids...)...)), &raw); err != nil {
		t.Fatal(err)
	}
	var out []ctr
	for _, r := range raw {
		c := ctr{ID: r.ID[:12], Name: strings.TrimPrefix(r.Name, "/"), Service: r.Config.Labels["com.docker.compose.service"],
			Status: r.State.Status, ExitCode: r.State.ExitCode, StartedAt: r.State.StartedAt, FinishedAt: r.State.FinishedAt,
			Hostname: r.Config.Hostname}
		if r.State.Health != nil {
			c.Health = r.State.Health.Status
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func byService(cs []ctr, svc string) []ctr {
	var out []ctr
	for _, c := range cs {
		if c.Service == svc {
			out = append(out, c)
		}
	}
	return out
}

// waitHealthy waits until every long-running container is running and
// healthy (each has a health check) and migrate has exited 0.
func waitHealthy(t *testing.T, within time.Duration) []ctr {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		cs := containers(t)
		var waiting []string
		for _, c := range cs {
			switch {
			case c.Service == "migrate":
				if c.Status == "exited" && c.ExitCode != 0 {
					t.Fatalf("migrate exited %d", c.ExitCode)
				}
				if c.Status != "exited" {
					waiting = append(waiting, c.Name+" "+c.Status)
				}
			case c.Health == "":
				t.Fatalf("%s has no health check", c.Name)
			case c.Status != "running" || c.Health != "healthy":
				waiting = append(waiting, c.Name+" "+c.Status+"/"+c.Health)
			}
		}
		if len(waiting) == 0 && len(cs) > 0 {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after %s: %v", within, waiting)
		}
		time.Sleep(time.Second)
	}
}

// hostClient reaches the published ports; entraemu.localhost goes to this
// machine as it does in a browser, and TLS is verified with the emulator's
// CA taken from the shared volume.
func hostClient(t *testing.T, caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("the emulator's CA from the volume is not PEM: %q", caPEM)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			if host == "localhost" || strings.HasSuffix(host, ".localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}}
}

type api struct {
	t     *testing.T
	hc    *http.Client
	token string
}

// do sends one request and decodes a 2xx JSON answer into out.
func (a *api) do(method, url string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(url, serverURL) {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// eventually retries f for up to within, for what a restart interrupts.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, within, err)
		}
		time.Sleep(time.Second)
	}
}

func TestComposeStack(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker is not installed; the compose test needs a Docker engine")
	}
	s := newStack(t)
	start := time.Now()
	if cs := containers(t); len(cs) > 0 {
		t.Logf("removing a previous run's %d containers", len(cs))
		s.must("down", "-v", "--remove-orphans")
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := s.compose("ps")
			t.Logf("compose ps:\n%s", out)
			out, _ = s.compose("logs", "--no-color", "--tail", "60")
			t.Logf("compose logs:\n%s", out)
		}
		if os.Getenv("COMPOSE_TEST_KEEP") == "1" {
			t.Log("COMPOSE_TEST_KEEP=1: the stack is left up")
			return
		}
		if out, err := s.compose("down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("down -v: %v\n%s", err, out)
		}
	})

	s.must("build")
	s.must("up", "-d")
	cs := waitHealthy(t, 3*time.Minute)
	t.Logf("up and healthy %s after the start", time.Since(start).Round(time.Second))

	// Every service is there, two workers among them.
	for svc, n := range map[string]int{"postgres": 1, "migrate": 1, "entraemu": 1, "server": 1, "worker": 2} {
		if got := len(byService(cs, svc)); got != n {
			t.Fatalf("%d %s containers, want %d", got, svc, n)
		}
	}
	// The one-shot migrate ran to completion before server and workers started.
	mig := byService(cs, "migrate")[0]
	for _, c := range append(byService(cs, "server"), byService(cs, "worker")...) {
		if !c.StartedAt.After(mig.FinishedAt) {
			t.Errorf("%s started at %s, before migrate finished at %s", c.Name, c.StartedAt, mig.FinishedAt)
		}
	}
	emu := byService(cs, "entraemu")[0]
	pg := byService(cs, "postgres")[0]

	// The emulator wrote its CA into the shared volume as nonroot; the
	// healthy server and workers (non-root too) read it from there.
	out, err := exec.Command("docker", "cp", emu.Name+":/emu/ca.pem", "-").Output()
	if err != nil {
		t.Fatalf("docker cp the CA: %v", err)
	}
	caPEM := untar(t, out)
	for _, c := range append(append(byService(cs, "server"), byService(cs, "worker")...), emu) {
		if u := docker(t, "inspect", "-f", "{{.Config.User}}", c.Name); u != "nonroot:nonroot" {
			t.Errorf("%s runs as %q, want nonroot", c.Name, u)
		}
	}

	srv, _ := loadCompose(t).GetService("server")
	a := &api{t: t, hc: hostClient(t, caPEM), token: *srv.Environment["OPERATOR_API_TOKEN"]}

	// Two workers, one leader.
	waitLeader(t, pg.Name, byService(cs, "worker"), "")

	// The README demo in a browser on the host: sign in on the published
	// port, go to the emulator at entraemu.localhost, connect Litware.
	const tid = entraemu.LitwareTenantID
	ctx := newChrome(t)
	var loginAt string
	if err := chromedp.Do(ctx,
		chromedp.Navigate(serverURL+"/"), chromedp.WaitVisible(chromedp.ID("signin")), chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("login")),
	); err != nil {
		t.Fatalf("to the sign-in page: %v", err)
	}
	loginAt, _ = chromedp.Run(ctx, chromedp.Location())
	if !strings.HasPrefix(loginAt, emuLogin+"/") {
		t.Errorf("the sign-in page is at %s, want %s/…", loginAt, emuLogin)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("login"), "admin@litware.example"),
		chromedp.SendKeys(chromedp.ID("password"), "tenantsync-demo"),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("connect")), chromedp.Click(chromedp.ID("connect")),
		chromedp.WaitVisible(chromedp.ID("accept")), chromedp.Click(chromedp.ID("accept")),
		chromedp.WaitVisible(chromedp.CSS(`#status[data-status="active"]`)),
	); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("sign in and connect (at %s): %v", loc, err)
	}
	want := emuUsers(t, a, tid)
	eventually(t, time.Minute, "the tenant page shows the users", func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(serverURL+"/tenant"), chromedp.WaitVisible(chromedp.ID("count-users"))); err != nil {
			return err
		}
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("count-users")))
		if err != nil {
			return err
		}
		if strings.TrimSpace(txt) != strconv.Itoa(len(want)) {
			return fmt.Errorf("page shows %q users, the emulator has %d", txt, len(want))
		}
		return nil
	})

	// The operator API lists it, connected, with the same users.
	var list struct {
		Items []struct {
			ID, Status string
			UserCount  int `json:"user_count"`
		}
	}
	if err := a.do("GET", serverURL+"/api/v1/tenants", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].ID != tid || list.Items[0].Status != "active" || list.Items[0].UserCount != len(want) {
		t.Fatalf("operator API lists %+v, want Litware active with %d users", list.Items, len(want))
	}
	checkUsers(t, a, tid, want)
	t.Logf("demo done %s after the start", time.Since(start).Round(time.Second))

	// The leading worker is killed: the other one keeps syncing and takes
	// over the leadership.
	old := waitLeader(t, pg.Name, byService(cs, "worker"), "")
	docker(t, "kill", old.Name)
	syncNewUser(t, a, tid, "after-worker-kill")
	nl := waitLeader(t, pg.Name, byService(cs, "worker"), old.Name)
	t.Logf("%s killed; %s leads now", old.Name, nl.Name)
	docker(t, "start", old.Name)
	cs = waitHealthy(t, 2*time.Minute)

	// Postgres restarts: the server and both workers reconnect and lose nothing.
	s.must("restart", "postgres")
	cs = waitHealthy(t, 2*time.Minute)
	syncNewUser(t, a, tid, "after-postgres-restart")
	waitLeader(t, pg.Name, byService(cs, "worker"), "")
	eventually(t, time.Minute, "the tenant is still listed, active", func() error {
		var list struct{ Items []struct{ ID, Status string } }
		if err := a.do("GET", serverURL+"/api/v1/tenants", nil, &list); err != nil {
			return err
		}
		if len(list.Items) != 1 || list.Items[0].ID != tid || list.Items[0].Status != "active" {
			return fmt.Errorf("operator API lists %+v", list.Items)
		}
		return nil
	})
	t.Logf("kill and restart survived, %s after the start", time.Since(start).Round(time.Second))

	if os.Getenv("COMPOSE_TEST_KEEP") == "1" {
		return
	}
	// down -v leaves nothing of the project behind.
	s.must("down", "-v", "--remove-orphans")
	for _, kind := range []string{"ps -a", "volume ls", "network ls"} {
		args := append(strings.Fields(kind), "-q", "--filter", "label=com.docker.compose.project="+project)
		if left := docker(t, args...); left != "" {
			t.Errorf("after down -v, docker %s still lists %s", kind, left)
		}
	}
	t.Logf("compose test done in %s", time.Since(start).Round(time.Second))
}

// untar reads the one file of the tar stream `docker cp … -` writes.
func untar(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) < 512 {
		t.Fatal("docker cp returned no tar")
	}
	size, err := strconv.ParseInt(strings.TrimSpace(strings.TrimRight(string(b[124:136]), "\x00")), 8, 64)
	if err != nil || int64(len(b)) < 512+size {
		t.Fatalf("docker cp: bad tar header (%v)", err)
	}
	return b[512 : 512+size]
}

// leader returns the worker container that River's leader table names as
// its one live leader (River's client ID starts with the hostname, which is
// the container's), or an error while there is not exactly one.
func leader(pg string, workers []ctr) (ctr, error) {
	out, err := exec.Command("docker", "exec", pg, "psql", "-U", "tenantsync", "-d", "tenantsync", "-Atc",
		"SELECT leader_id FROM river_leader WHERE expires_at > now()").CombinedOutput()
	if err != nil {
		return ctr{}, fmt.Errorf("psql: %v: %s", err, out)
	}
	leaders := strings.Fields(string(out))
	if len(leaders) != 1 {
		return ctr{}, fmt.Errorf("leaders %q, want one", leaders)
	}
	for _, w := range workers {
		if strings.HasPrefix(leaders[0], w.Hostname) {
			return w, nil
		}
	}
	return ctr{}, fmt.Errorf("leader %s is none of the workers %v", leaders[0], workers)
}

// waitLeader waits for one leader among workers, other than not (if set).
func waitLeader(t *testing.T, pg string, workers []ctr, not string) ctr {
	t.Helper()
	var l ctr
	eventually(t, 90*time.Second, "one River leader", func() error {
		var err error
		if l, err = leader(pg, workers); err == nil && l.Name == not {
			err = fmt.Errorf("%s is still the leader", not)
		}
		return err
	})
	return l
}

// emuUsers lists the user IDs the emulator holds for the tenant.
func emuUsers(t *testing.T, a *api, tid string) []string {
	t.Helper()
	var dir struct{ Users []struct{ ID string } }
	if err := a.do("GET", emuLogin+"/_emu/tenants/"+tid+"/directory", nil, &dir); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range dir.Users {
		ids = append(ids, u.ID)
	}
	sort.Strings(ids)
	return ids
}

func apiUsers(a *api, tid string) ([]string, error) {
	var ids []string
	url := serverURL + "/api/v1/tenants/" + tid + "/users?limit=100"
	for {
		var page struct {
			Items      []struct{ ID string }
			NextCursor *string `json:"next_cursor"`
		}
		if err := a.do("GET", url, nil, &page); err != nil {
			return nil, err
		}
		for _, u := range page.Items {
			ids = append(ids, u.ID)
		}
		if page.NextCursor == nil {
			break
		}
		url = serverURL + "/api/v1/tenants/" + tid + "/users?limit=100&cursor=" + *page.NextCursor
	}
	sort.Strings(ids)
	return ids, nil
}

// checkUsers waits until the API's copy of the directory is the emulator's.
func checkUsers(t *testing.T, a *api, tid string, want []string) {
	t.Helper()
	eventually(t, 2*time.Minute, "the API's users match the emulator's", func() error {
		got, err := apiUsers(a, tid)
		if err != nil {
			return err
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("API has %d users, the emulator %d", len(got), len(want))
		}
		return nil
	})
}

// syncNewUser creates a user in the emulator, forces a sync through the
// API and waits for the copy to hold every user, the new one included.
func syncNewUser(t *testing.T, a *api, tid, name string) {
	t.Helper()
	var u struct{ ID string }
	body := map[string]any{"userPrincipalName": name + "@litware.example", "displayName": name}
	if err := a.do("POST", emuLogin+"/_emu/tenants/"+tid+"/users", body, &u); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "queue a sync", func() error {
		return a.do("POST", serverURL+"/api/v1/tenants/"+tid+"/sync", nil, nil)
	})
	checkUsers(t, a, tid, emuUsers(t, a, tid))
	t.Logf("user %s (%s) arrived", name, u.ID)
}

// newChrome starts headless Chromium on the host (as the project's browser
// tests do); actions get a 3-minute budget in total.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"} {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("ignore-certificate-errors", true), // the emulator's own CA
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelC := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelC)
	return tctx
}
