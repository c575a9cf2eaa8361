package entraemu

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// notification is the exact value Graph sends for a user or group change
// (protocol §7).
func notification(sub map[string]any, changeType, kind, id string) map[string]any {
	typ, seg := "#Microsoft.Graph.User", "Users/"
	if kind == "groups" {
		typ, seg = "#Microsoft.Graph.Group", "Groups/"
	}
	return map[string]any{
		"subscriptionId": sub["id"], "subscriptionExpirationDateTime": sub["expirationDateTime"],
		"changeType": changeType, "resource": seg + id, "clientState": sub["clientState"], "tenantId": ContosoTenantID,
		"resourceData": map[string]any{"@odata.type": typ, "@odata.id": seg + id, "id": id, "organizationId": ContosoTenantID},
	}
}

func createSub(t *testing.T, s *Server, tok string, body map[string]any) map[string]any {
	t.Helper()
	status, sub := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", body)
	if status != http.StatusCreated {
		t.Fatalf("create subscription: %d %v", status, sub)
	}
	return sub
}

func TestSubscriptionUsersNotifications(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})
	rc := newReceiver(t)
	tok := secretToken(t, s, ContosoTenantID)

	body := subBody(clk, rc, "users")
	sub := createSub(t, s, tok, body)
	want := map[string]any{
		"resource": "users", "changeType": "updated,deleted", "clientState": "s3cret-state",
		"notificationUrl": body["notificationUrl"], "lifecycleNotificationUrl": body["lifecycleNotificationUrl"],
		"expirationDateTime": clk.Now().Add(2 * time.Hour).UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"applicationId":      s.DefaultApp().ClientID,
	}
	for k, v := range want {
		if sub[k] != v {
			t.Errorf("subscription %s = %v, want %v", k, sub[k], v)
		}
	}
	if !isGUID(fmt.Sprint(sub["id"])) || !strings.HasSuffix(fmt.Sprint(sub["@odata.context"]), "/v1.0/$metadata#subscriptions/$entity") {
		t.Errorf("subscription id/context: %v", sub)
	}
	// Both URLs were validated with a decoded token.
	if len(rc.tokens) != 2 || !strings.HasPrefix(rc.tokens[0], "Validation: Testing client application reachability") {
		t.Errorf("validation tokens: %q", rc.tokens)
	}

	u, err := s.CreateUser(ContosoTenantID, User{UserPrincipalName: "notify@contoso.example", DisplayName: "N", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	u.JobTitle = "Engineer"
	steps := []func() error{
		func() error { return s.UpdateUser(ContosoTenantID, u) },
		func() error { u.AccountEnabled = false; return s.UpdateUser(ContosoTenantID, u) },
		func() error { return s.DeleteUser(ContosoTenantID, u.ID, false) },
		func() error { return s.RestoreUser(ContosoTenantID, u.ID) },
		func() error { return s.DeleteUser(ContosoTenantID, u.ID, true) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// Create, update, disable, soft delete and restore are "updated"; a hard
	// delete is "deleted" (protocol §7).
	var wantValues []map[string]any
	for range 5 {
		wantValues = append(wantValues, notification(sub, "updated", "users", u.ID))
	}
	wantValues = append(wantValues, notification(sub, "deleted", "users", u.ID))
	got := rc.waitValues(t, len(wantValues))
	if diff := cmp.Diff(wantValues, got); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}

	// The control API lists the subscription with its delivery counters
	// (updated once the receiver's answer is in).
	rc.waitFor(t, "delivery counters", func() bool { return s.Subscriptions(ContosoTenantID)[0].Delivered == 6 })
	infos := s.Subscriptions(ContosoTenantID)
	if len(infos) != 1 || infos[0].Delivered != 6 || infos[0].Pending != 0 || infos[0].Resource != "users" {
		t.Errorf("Subscriptions = %+v", infos)
	}
	status, raw := control(t, s, "GET", "/subscriptions?tenant="+ContosoTenantID, "")
	var listed []map[string]any
	if err := json.Unmarshal(raw, &listed); status != 200 || err != nil || len(listed) != 1 {
		t.Fatalf("control list: %d %s", status, raw)
	}
	for _, k := range []string{"id", "tenant_id", "app_id", "resource", "change_type", "notification_url", "lifecycle_notification_url", "expiration_date_time", "delivered", "failed", "pending"} {
		if _, ok := listed[0][k]; !ok {
			t.Errorf("control list lacks %s: %s", k, raw)
		}
	}
	if c := s.Counters(ContosoTenantID); c.NotificationsDelivered != 6 || c.SubscriptionRequests != 1 {
		t.Errorf("counters: delivered %d, subscription requests %d", c.NotificationsDelivered, c.SubscriptionRequests)
	}
	// Other tenants see nothing.
	if got := s.Subscriptions(FabrikamTenantID); len(got) != 0 {
		t.Errorf("fabrikam subscriptions: %+v", got)
	}
}

func TestSubscriptionGroupNotifications(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})
	groups, deletes := newReceiver(t), newReceiver(t)
	tok := secretToken(t, s, ContosoTenantID)
	gsub := createSub(t, s, tok, subBody(clk, groups, "/groups"))
	body := subBody(clk, deletes, "users")
	body["changeType"] = "deleted"
	delete(body, "clientState")
	usub := createSub(t, s, tok, body)
	if usub["clientState"] != nil {
		t.Errorf("clientState without one sent = %v", usub["clientState"])
	}

	u, err := s.CreateUser(ContosoTenantID, User{UserPrincipalName: "member@contoso.example", DisplayName: "M", AccountEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGroup(ContosoTenantID, Group{DisplayName: "Notified"})
	if err != nil {
		t.Fatal(err)
	}
	g.Description = "changed"
	for i, step := range []func() error{
		func() error { return s.UpdateGroup(ContosoTenantID, g) },
		func() error { return s.AddMember(ContosoTenantID, g.ID, u.ID) },
		func() error { return s.RemoveMember(ContosoTenantID, g.ID, u.ID) },
		func() error { return s.DeleteGroup(ContosoTenantID, g.ID, false) },
		func() error { return s.DeleteGroup(ContosoTenantID, g.ID, true) },
		func() error { return s.DeleteUser(ContosoTenantID, u.ID, true) },
	} {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var want []map[string]any
	for range 5 { // create, update, member add, member remove, soft delete
		want = append(want, notification(gsub, "updated", "groups", g.ID))
	}
	want = append(want, notification(gsub, "deleted", "groups", g.ID))
	if diff := cmp.Diff(want, groups.waitValues(t, len(want))); diff != "" {
		t.Errorf("group notifications (-want +got):\n%s", diff)
	}
	// A "deleted"-only users subscription hears the hard delete alone.
	wantDel := []map[string]any{notification(usub, "deleted", "users", u.ID)}
	if diff := cmp.Diff(wantDel, deletes.waitValues(t, 1)); diff != "" {
		t.Errorf("user delete notifications (-want +got):\n%s", diff)
	}
}

func TestSubscriptionBatching(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000, NotificationBatchWindow: time.Second})
	rc := newReceiver(t)
	sub := createSub(t, s, secretToken(t, s, ContosoTenantID), subBody(clk, rc, "groups"))
	g, err := s.CreateGroup(ContosoTenantID, Group{DisplayName: "Busy"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 149 {
		g.Description = fmt.Sprint(i)
		if err := s.UpdateGroup(ContosoTenantID, g); err != nil {
			t.Fatal(err)
		}
	}
	rc.waitValues(t, 150)
	rc.mu.Lock()
	sizes := []int{}
	for _, b := range rc.batches {
		sizes = append(sizes, len(b))
	}
	rc.mu.Unlock()
	// 150 changes inside one batch window: two POSTs of at most 100 values.
	if diff := cmp.Diff([]int{100, 50}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if v := rc.values()[149]; v["subscriptionId"] != sub["id"] {
		t.Errorf("last value: %v", v)
	}
}

func TestSubscriptionHandshakeFailures(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000, SubscriptionValidationTimeout: 300 * time.Millisecond})
	tok := secretToken(t, s, ContosoTenantID)
	for _, tc := range []struct {
		name      string
		validate  func(w http.ResponseWriter, r *http.Request, token string)
		lifecycle bool // only the lifecycle URL fails
		msg       string
	}{
		{"wrong body", func(w http.ResponseWriter, _ *http.Request, tok string) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, url.QueryEscape(tok)) // still encoded
		}, false, "Response must exactly match validationToken"},
		{"wrong content type", func(w http.ResponseWriter, _ *http.Request, tok string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, tok)
		}, false, "Content-Type text/plain"},
		{"not 200", func(w http.ResponseWriter, _ *http.Request, tok string) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, tok)
		}, false, "must respond with 200 OK"},
		{"slow", func(w http.ResponseWriter, r *http.Request, tok string) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			echoToken(w, r, tok)
		}, false, "timed out"},
		{"lifecycle URL fails", func(w http.ResponseWriter, r *http.Request, tok string) {
			if r.URL.Path == "/lifecycle" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			echoToken(w, r, tok)
		}, true, "must respond with 200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			rc.validate = tc.validate
			status, body := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", subBody(clk, rc, "users"))
			if status != 400 || graphErrorCode(body) != "InvalidRequest" || !strings.Contains(graphErrorMessage(body), tc.msg) {
				t.Errorf("create: %d %v, want 400 containing %q", status, body, tc.msg)
			}
			if tc.lifecycle && len(rc.tokens) != 2 {
				t.Errorf("validations: %d, want both URLs", len(rc.tokens))
			}
		})
	}
	// A plain-http URL off loopback is refused before any handshake.
	rc := newReceiver(t)
	body := subBody(clk, rc, "users")
	body["notificationUrl"] = "http://example.com/notify"
	if status, resp := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", body); status != 400 || !strings.Contains(graphErrorMessage(resp), "https") {
		t.Errorf("http off loopback: %d %v", status, resp)
	}
	if got := s.Subscriptions(""); len(got) != 0 {
		t.Errorf("failed creates stored subscriptions: %+v", got)
	}
}

func TestSubscriptionLifetime(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})
	rc := newReceiver(t)
	tok := secretToken(t, s, ContosoTenantID)
	at := func(d time.Duration) string { return clk.Now().Add(d).Format(time.RFC3339Nano) }

	for name, tc := range map[string]struct {
		mutate func(b map[string]any)
		msg    string
	}{
		"beyond 41,760 minutes": {func(b map[string]any) { b["expirationDateTime"] = at(41761 * time.Minute) }, "41760 minutes"},
		"past":                  {func(b map[string]any) { b["expirationDateTime"] = at(-time.Minute) }, "in the future"},
		"no lifecycle URL":      {func(b map[string]any) { delete(b, "lifecycleNotificationUrl") }, "lifecycleNotificationUrl is required"},
		"created":               {func(b map[string]any) { b["changeType"] = "created,updated" }, "'created' is not supported"},
		"long clientState":      {func(b map[string]any) { b["clientState"] = strings.Repeat("x", 129) }, "128 characters"},
		"unsupported resource":  {func(b map[string]any) { b["resource"] = "users/" + ContosoTenantID }, "not supported"},
	} {
		body := subBody(clk, rc, "users")
		tc.mutate(body)
		if status, resp := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", body); status != 400 || !strings.Contains(graphErrorMessage(resp), tc.msg) {
			t.Errorf("%s: %d %v, want 400 with %q", name, status, resp, tc.msg)
		}
	}
	// 41,760 minutes exactly is granted; 10 minutes is raised to 45 (and
	// needs no lifecycle URL).
	long := subBody(clk, rc, "users")
	long["expirationDateTime"] = at(41760 * time.Minute)
	createSub(t, s, tok, long)
	short := subBody(clk, rc, "users")
	delete(short, "lifecycleNotificationUrl")
	short["expirationDateTime"] = at(10 * time.Minute)
	sub := createSub(t, s, tok, short)
	if want := clk.Now().Add(45 * time.Minute).UTC().Format("2006-01-02T15:04:05.0000000Z"); sub["expirationDateTime"] != want {
		t.Errorf("granted %v, want %s", sub["expirationDateTime"], want)
	}
	id := sub["id"].(string)

	// Renew: 2 hours needs a lifecycle URL, given in the same PATCH.
	status, resp := graphDo(t, s, tok, "PATCH", "/v1.0/subscriptions/"+id, map[string]any{"expirationDateTime": at(2 * time.Hour)})
	if status != 400 || !strings.Contains(graphErrorMessage(resp), "lifecycleNotificationUrl is required") {
		t.Errorf("renew without lifecycle URL: %d %v", status, resp)
	}
	status, resp = graphDo(t, s, tok, "PATCH", "/v1.0/subscriptions/"+id, map[string]any{"expirationDateTime": at(2 * time.Hour), "lifecycleNotificationUrl": rc.URL + "/lc"})
	if status != 200 || resp["lifecycleNotificationUrl"] != rc.URL+"/lc" {
		t.Fatalf("renew: %d %v", status, resp)
	}
	if status, _ := graphDo(t, s, tok, "PATCH", "/v1.0/subscriptions/"+id, map[string]any{"expirationDateTime": at(30 * 24 * time.Hour)}); status != 400 {
		t.Errorf("renew beyond the maximum: %d", status)
	}
	if status, resp := graphDo(t, s, tok, "GET", "/v1.0/subscriptions/"+id, nil); status != 200 || resp["expirationDateTime"] != string(appendGraphTime(nil, clk.Now().Add(2*time.Hour))) {
		t.Errorf("get after renew: %d %v", status, resp)
	}
	if status, _ := graphDo(t, s, tok, "POST", "/v1.0/subscriptions/"+id+"/reauthorize", nil); status != 204 {
		t.Errorf("reauthorize: %d", status)
	}
	status, list := graphDo(t, s, tok, "GET", "/v1.0/subscriptions", nil)
	if vals, _ := list["value"].([]any); status != 200 || len(vals) != 2 {
		t.Errorf("list: %d %v", status, list)
	}

	// Expiry: after 2 hours every route answers 404 and nothing is sent.
	clk.Advance(2*time.Hour + time.Second)
	tok = secretToken(t, s, ContosoTenantID)
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if status, _ := graphDo(t, s, tok, m, "/v1.0/subscriptions/"+id, map[string]any{"expirationDateTime": at(time.Hour)}); status != 404 {
			t.Errorf("%s expired: %d", m, status)
		}
	}
	if _, err := s.CreateUser(ContosoTenantID, User{UserPrincipalName: "late@contoso.example", DisplayName: "L"}); err != nil {
		t.Fatal(err)
	}
	infos := s.Subscriptions(ContosoTenantID)
	if len(infos) != 1 || infos[0].ExpirationDateTime.Sub(clk.Now()) < 24*time.Hour || infos[0].Pending+infos[0].Delivered != 1 {
		t.Errorf("after expiry only the long subscription (with one change) remains: %+v", infos)
	}

	// DELETE answers 204, then 404.
	longID := infos[0].ID
	if status, _ := graphDo(t, s, tok, "DELETE", "/v1.0/subscriptions/"+longID, nil); status != 204 {
		t.Errorf("delete: %d", status)
	}
	if status, resp := graphDo(t, s, tok, "GET", "/v1.0/subscriptions/"+longID, nil); status != 404 || graphErrorCode(resp) != "ResourceNotFound" {
		t.Errorf("get deleted: %d %v", status, resp)
	}
}

func TestSubscriptionPermissionsAndQuota(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000, SubscriptionQuota: 2})
	rc := newReceiver(t)
	if err := s.RemoveRoles(FabrikamTenantID); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(FabrikamTenantID, "User.Read.All"); err != nil {
		t.Fatal(err)
	}
	fab := secretToken(t, s, FabrikamTenantID)
	if status, resp := graphDo(t, s, fab, "POST", "/v1.0/subscriptions", subBody(clk, rc, "groups")); status != 403 || graphErrorCode(resp) != "Authorization_RequestDenied" {
		t.Errorf("groups without a groups permission: %d %v", status, resp)
	}
	createSub(t, s, fab, subBody(clk, rc, "users"))
	con := secretToken(t, s, ContosoTenantID)
	createSub(t, s, con, subBody(clk, rc, "groups"))
	// The per-app quota (lowered to 2) counts across tenants.
	status, resp := graphDo(t, s, con, "POST", "/v1.0/subscriptions", subBody(clk, rc, "users"))
	if status != 403 || !strings.Contains(graphErrorMessage(resp), "at most 2 subscriptions per application across all tenants") {
		t.Errorf("beyond quota: %d %v", status, resp)
	}
	if status, raw := control(t, s, "PUT", "/subscription-quota", `{"per_app":3}`); status != 204 {
		t.Fatalf("set quota: %d %s", status, raw)
	}
	createSub(t, s, con, subBody(clk, rc, "users"))
	if status, _ := control(t, s, "PUT", "/subscription-quota", `{"per_app":-1}`); status != 400 {
		t.Errorf("negative quota: %d", status)
	}
	if n := len(s.Subscriptions("")); n != 3 {
		t.Errorf("%d subscriptions, want 3", n)
	}
}

func TestSubscriptionQuotaFreedByExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000, SubscriptionQuota: 1})
	rc := newReceiver(t)
	createSub(t, s, secretToken(t, s, ContosoTenantID), subBody(clk, rc, "users"))
	if status, _ := graphDo(t, s, secretToken(t, s, FabrikamTenantID), "POST", "/v1.0/subscriptions", subBody(clk, rc, "users")); status != 403 {
		t.Errorf("second subscription with quota 1: %d", status)
	}
	clk.Advance(3 * time.Hour) // the first one expired: its quota is free again
	createSub(t, s, secretToken(t, s, FabrikamTenantID), subBody(clk, rc, "users"))
	if got := s.Subscriptions(""); len(got) != 1 || got[0].TenantID != FabrikamTenantID {
		t.Errorf("subscriptions: %+v", got)
	}
}

func TestSubscriptionAppTenantQuota(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1e6})
	rc := newReceiver(t)
	tok := secretToken(t, s, ContosoTenantID)
	for i := range 100 {
		if status, resp := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", subBody(clk, rc, "users")); status != 201 {
			t.Fatalf("subscription %d: %d %v", i, status, resp)
		}
	}
	status, resp := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", subBody(clk, rc, "users"))
	if status != 403 || !strings.Contains(graphErrorMessage(resp), "100 subscriptions per application and tenant") {
		t.Errorf("101st: %d %v", status, resp)
	}
}

func TestSubscriptionForeignTenant(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})
	rc := newReceiver(t)
	sub := createSub(t, s, secretToken(t, s, ContosoTenantID), subBody(clk, rc, "users"))
	path := "/v1.0/subscriptions/" + sub["id"].(string)
	fab := secretToken(t, s, FabrikamTenantID)
	for _, r := range []struct{ method, path string }{{"GET", path}, {"PATCH", path}, {"DELETE", path}, {"POST", path + "/reauthorize"}} {
		if status, resp := graphDo(t, s, fab, r.method, r.path, map[string]any{}); status != 404 {
			t.Errorf("%s %s from another tenant: %d %v", r.method, r.path, status, resp)
		}
	}
	status, list := graphDo(t, s, fab, "GET", "/v1.0/subscriptions", nil)
	if vals, ok := list["value"].([]any); status != 200 || !ok || len(vals) != 0 {
		t.Errorf("foreign list: %d %v", status, list)
	}
	// Changes in another tenant do not reach Contoso's subscription.
	if _, err := s.CreateUser(FabrikamTenantID, User{UserPrincipalName: "x@fabrikam.example", DisplayName: "X"}); err != nil {
		t.Fatal(err)
	}
	if in := s.Subscriptions(ContosoTenantID); len(in) != 1 || in[0].Pending+in[0].Delivered != 0 {
		t.Errorf("contoso subscription after a fabrikam change: %+v", in)
	}
}

func TestNotificationRetryInOrder(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000,
		NotificationBatchWindow: time.Millisecond, NotificationRetryBase: 20 * time.Millisecond})
	rc := newReceiver(t)
	sub := createSub(t, s, secretToken(t, s, ContosoTenantID), subBody(clk, rc, "groups"))
	rc.mu.Lock()
	rc.fail = 3
	rc.mu.Unlock()
	var ids []string
	for i := range 3 {
		g, err := s.CreateGroup(ContosoTenantID, Group{DisplayName: fmt.Sprint("G", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
		if i == 0 { // the next changes queue behind a failing delivery
			rc.waitFor(t, "a failed delivery", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.failedPosts > 0 })
		}
	}
	var want []map[string]any
	for _, id := range ids {
		want = append(want, notification(sub, "updated", "groups", id))
	}
	if diff := cmp.Diff(want, rc.waitValues(t, 3)); diff != "" {
		t.Errorf("after recovery (-want +got):\n%s", diff)
	}
	rc.waitFor(t, "delivery counters", func() bool { return s.Subscriptions(ContosoTenantID)[0].Delivered == 3 })
	in := s.Subscriptions(ContosoTenantID)[0]
	if in.Delivered != 3 || in.Failed < 3 || in.Pending != 0 || in.Dropped != 0 {
		t.Errorf("counters: %+v", in)
	}
}

func TestNotificationDroppedAfterRetryPeriod(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000, NotificationBatchWindow: time.Millisecond,
		NotificationRetryBase: 10 * time.Millisecond, NotificationRetryFor: 50 * time.Millisecond})
	rc := newReceiver(t)
	createSub(t, s, secretToken(t, s, ContosoTenantID), subBody(clk, rc, "groups"))
	rc.mu.Lock()
	rc.fail = 1 << 30
	rc.mu.Unlock()
	if _, err := s.CreateGroup(ContosoTenantID, Group{DisplayName: "Lost"}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, "the drop", func() bool { in := s.Subscriptions(ContosoTenantID)[0]; return in.Dropped == 1 })
	in := s.Subscriptions(ContosoTenantID)[0]
	if in.Pending != 0 || in.Delivered != 0 || in.Failed < 2 || len(rc.values()) != 0 {
		t.Errorf("after the retry period: %+v", in)
	}
	if c := s.Counters(ContosoTenantID); c.NotificationsDropped != 1 || c.NotificationsFailed != in.Failed {
		t.Errorf("counters: %+v", c)
	}
}

func TestSubscriptionLifecycleAndControl(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000})
	rc := newReceiver(t)
	tok := secretToken(t, s, ContosoTenantID)
	sub := createSub(t, s, tok, subBody(clk, rc, "users"))
	id := sub["id"].(string)
	if status, raw := control(t, s, "POST", "/subscriptions/"+id+"/lifecycle", `{"lifecycleEvent":"reauthorizationRequired"}`); status != 204 {
		t.Fatalf("lifecycle: %d %s", status, raw)
	}
	want := []map[string]any{{"subscriptionId": id, "subscriptionExpirationDateTime": sub["expirationDateTime"],
		"tenantId": ContosoTenantID, "clientState": "s3cret-state", "lifecycleEvent": "reauthorizationRequired"}}
	if diff := cmp.Diff(want, rc.waitValues(t, 1)); diff != "" {
		t.Errorf("lifecycle notification (-want +got):\n%s", diff)
	}
	if !s.Subscriptions(ContosoTenantID)[0].ReauthorizationRequired {
		t.Error("reauthorization not required after the event")
	}
	if status, _ := graphDo(t, s, tok, "POST", "/v1.0/subscriptions/"+id+"/reauthorize", nil); status != 204 {
		t.Errorf("reauthorize: %d", status)
	}
	if s.Subscriptions(ContosoTenantID)[0].ReauthorizationRequired {
		t.Error("still required after reauthorize")
	}
	if status, _ := control(t, s, "POST", "/subscriptions/"+id+"/lifecycle", `{"lifecycleEvent":"bogus"}`); status != 400 {
		t.Errorf("bogus event: %d", status)
	}
	// Removed behind the client's back: Graph answers 404 from now on.
	if status, _ := control(t, s, "DELETE", "/subscriptions/"+id, ""); status != 204 {
		t.Errorf("control delete: %d", status)
	}
	if status, _ := graphDo(t, s, tok, "PATCH", "/v1.0/subscriptions/"+id, map[string]any{"expirationDateTime": clk.Now().Add(time.Hour).Format(time.RFC3339)}); status != 404 {
		t.Errorf("patch after control delete: %d", status)
	}
	if status, _ := control(t, s, "DELETE", "/subscriptions/"+id, ""); status != 404 {
		t.Errorf("second control delete: %d", status)
	}
}

func TestDeltaFunctionForm(t *testing.T) {
	t.Parallel()
	s := StartTest(t, Config{Seed: SmallSeed(), ThrottleScale: 1000})
	tok := secretToken(t, s, ContosoTenantID)
	for _, p := range []string{"/v1.0/users/delta()", "/v1.0/groups/delta()", "/v1.0/users/microsoft.graph.delta", "/v1.0/groups/delta"} {
		resp, body := graphGet(t, s, tok, p)
		if vals, ok := body["value"].([]any); resp.StatusCode != 200 || !ok || len(vals) == 0 {
			t.Errorf("%s: %d %v", p, resp.StatusCode, body["error"])
		}
	}
	if resp, _ := graphGet(t, s, tok, "/v1.0/users/delta(x)"); resp.StatusCode == 200 {
		t.Errorf("users/delta(x) answered 200")
	}
}

func TestSubscriptionHTTPSReceiver(t *testing.T) {
	t.Parallel()
	authority, err := newCA()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(authority.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clk := newClock()
	s := StartTest(t, Config{Seed: SmallSeed(), Now: clk.Now, ThrottleScale: 1000, CACertPEM: authority.certPEM, CAKeyPEM: keyPEM})
	leaf, err := authority.leaf()
	if err != nil {
		t.Fatal(err)
	}
	tok := secretToken(t, s, ContosoTenantID)
	// A receiver whose certificate the emulator's CA signed is trusted …
	trusted := newTLSReceiver(t, &leaf)
	sub := createSub(t, s, tok, subBody(clk, trusted, "users"))
	u, err := s.CreateUser(ContosoTenantID, User{UserPrincipalName: "tls@contoso.example", DisplayName: "T"})
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{notification(sub, "updated", "users", u.ID)}
	if diff := cmp.Diff(want, trusted.waitValues(t, 1)); diff != "" {
		t.Errorf("over https (-want +got):\n%s", diff)
	}
	// … one with an unknown issuer fails validation.
	untrusted := newTLSReceiver(t, nil)
	if status, resp := graphDo(t, s, tok, "POST", "/v1.0/subscriptions", subBody(clk, untrusted, "users")); status != 400 || graphErrorCode(resp) != "InvalidRequest" {
		t.Errorf("untrusted certificate: %d %v", status, resp)
	}
}
