package graph

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var subscriptionSeeds = []string{
	`{"id":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","resource":"users","changeType":"updated,deleted",` +
		`"notificationUrl":"https://sync.example.com/graph/notifications","expirationDateTime":"2026-12-29T10:00:00.0000000Z"}`,
	`{"value":[{"id":"a","expirationDateTime":"2026-12-29T10:00:00Z"},{"id":"b","expirationDateTime":"2026-12-29T10:00:00+01:00"}],` +
		`"@odata.nextLink":"https://graph.microsoft.com/v1.0/subscriptions?$skiptoken=x"}`,
	`{"value":[{"id":"","expirationDateTime":"2026-12-29T10:00:00Z"}]}`,
	`{"id":"x","expirationDateTime":"tomorrow"}`,
	`{"value":null}`,
	`[]`,
}

// FuzzSubscription decodes any body as one subscription and as a list page:
// no panic, and whatever decodes has an ID and an expiration in UTC.
func FuzzSubscription(f *testing.F) {
	for _, s := range subscriptionSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if s, err := decodeSubscription(bytes.NewReader(body)); err == nil {
			checkSubscription(t, s)
		}
		page, _, err := decodeSubscriptionList(bytes.NewReader(body))
		if err != nil && page != nil {
			t.Fatalf("failed list decode returned %d subscriptions", len(page))
		}
		for _, s := range page {
			checkSubscription(t, s)
		}
	})
}

func checkSubscription(t *testing.T, s Subscription) {
	t.Helper()
	if s.ID == "" || len(s.ID) > 256 {
		t.Fatalf("decoded a subscription with id %q", s.ID)
	}
	if s.ExpiresAt.IsZero() || s.ExpiresAt.Location() != time.UTC {
		t.Fatalf("decoded expiration %v, want a UTC time", s.ExpiresAt)
	}
}

func TestSubscriptionSeedsDecode(t *testing.T) {
	t.Parallel()
	s, err := decodeSubscription(strings.NewReader(subscriptionSeeds[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 12, 29, 10, 0, 0, 0, time.UTC)
	if s.ID != "7f105c7d-2dc5-4530-97cd-4e7ae6534c07" || s.Resource != "users" || !s.ExpiresAt.Equal(want) {
		t.Errorf("decoded %+v", s)
	}
	page, next, err := decodeSubscriptionList(strings.NewReader(subscriptionSeeds[1]))
	if err != nil || len(page) != 2 || !strings.Contains(next, "skiptoken") || !page[1].ExpiresAt.Equal(want.Add(-time.Hour)) {
		t.Errorf("list: %+v, %q, %v", page, next, err)
	}
	for _, bad := range subscriptionSeeds[2:4] {
		if _, _, err := decodeSubscriptionList(strings.NewReader(`{"value":[` + strings.TrimSuffix(strings.TrimPrefix(bad, `{"value":[`), `]}`) + `]}`)); err == nil {
			t.Errorf("%s decoded, want an error", bad)
		}
	}
}

// TestSubscriptionErrorKinds: the subscription failures the job acts on
// differently are told apart (protocol §7).
func TestSubscriptionErrorKinds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status        int
		code, message string
		want          ErrorKind
	}{
		{http.StatusNotFound, "ResourceNotFound", "The object was not found.", ErrVanished},
		{http.StatusForbidden, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: Subscription limit reached for this app]", ErrQuotaExceeded},
		{http.StatusForbidden, "Forbidden", "The maximum number of subscriptions was reached.", ErrQuotaExceeded},
		{http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", ErrInsufficientPermissions},
		{http.StatusForbidden, "Authorization_RequestDenied", "limit", ErrInsufficientPermissions},
		{http.StatusBadRequest, "ValidationError", "Subscription validation request failed.", ErrValidationFailed},
		{http.StatusBadRequest, "InvalidRequest", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.", ErrValidationFailed},
		{http.StatusBadRequest, "InvalidRequest", "expirationDateTime is out of range", ErrOther},
	} {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(`{"error":{"code":"` + tt.code + `","message":"` + tt.message + `"}}`))}
		e := readError(resp)
		subscriptionKind(e)
		if e.Kind != tt.want {
			t.Errorf("%d %s %q: %v, want kind %s", tt.status, tt.code, tt.message, e, tt.want)
		}
	}
}
