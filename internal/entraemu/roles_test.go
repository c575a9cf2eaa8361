package entraemu

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestDirectoryRolesConsent: seeded directory roles reach the ID token's
// wids, and only Global and Privileged Role Administrators may grant the
// Graph application permissions of /.default (protocol §1.1); Cloud
// Application and Application Administrators get "Need admin approval".
func TestDirectoryRolesConsent(t *testing.T) {
	t.Parallel()
	seed := SmallSeed()
	for i := range seed.Tenants {
		if seed.Tenants[i].ID != LitwareTenantID {
			continue
		}
		seed.Tenants[i].Users = append(seed.Tenants[i].Users,
			User{UserPrincipalName: "pra@litware.example", AccountEnabled: true, DirectoryRoles: []string{strings.ToUpper(PrivilegedRoleAdminRoleTemplateID)}},
			User{UserPrincipalName: "cloudapp@litware.example", AccountEnabled: true, DirectoryRoles: []string{CloudAppAdminRoleTemplateID}},
			User{UserPrincipalName: "appadmin@litware.example", AccountEnabled: true, DirectoryRoles: []string{AppAdminRoleTemplateID}})
	}
	s := StartTest(t, Config{Seed: seed})

	tests := []struct {
		upn       string
		wids      []string
		mayGrant  bool
		delegated bool // may consent to delegated permissions only (v2 without /.default)
	}{
		{"admin@litware.example", []string{GlobalAdminRoleTemplateID}, true, true},
		{"pra@litware.example", []string{PrivilegedRoleAdminRoleTemplateID}, true, true},
		{"cloudapp@litware.example", []string{CloudAppAdminRoleTemplateID}, false, true},
		{"appadmin@litware.example", []string{AppAdminRoleTemplateID}, false, true},
		{"user@litware.example", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.upn, func(t *testing.T) {
			t.Parallel()
			c := browser(t, s)
			verifier, challenge := pkcePair()
			resp, _ := signInAt(t, c, authorizeURL(s, "organizations", challenge, ""), tt.upn)
			p := redirectParams(t, resp)
			status, tok := postToken(t, s, "organizations", url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID},
				"client_secret": {DefaultClientSecret}, "code": {p.Get("code")}, "redirect_uri": {authCallback}, "code_verifier": {verifier}})
			if status != 200 {
				t.Fatalf("redeem: %d %v", status, tok)
			}
			var got []string
			if w, ok := decodeJWT(t, tok["id_token"].(string))["wids"]; ok {
				got = toStrings(w)
			}
			if !slices.Equal(got, tt.wids) {
				t.Errorf("ID token wids = %v, want %v", got, tt.wids)
			}

			// Same browser (SSO): the /.default admin consent.
			_, body := get(t, c, consentURL(s, LitwareTenantID, true, DefaultClientID, connectCallback))
			if got := strings.Contains(body, `id="consent"`); got != tt.mayGrant {
				t.Errorf("consent page offered = %v, want %v: %.300s", got, tt.mayGrant, body)
			}
			if !tt.mayGrant && !strings.Contains(body, "AADSTS90094") {
				t.Errorf("no admin-approval page: %.300s", body)
			}
			// Delegated permissions only: Cloud Application and Application
			// Administrators may grant these.
			q := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {connectCallback}, "state": {"cs-2"},
				"scope": {"https://graph.microsoft.com/User.Read"}}
			_, body = get(t, c, s.AuthorityHost+"/"+LitwareTenantID+"/v2.0/adminconsent?"+q.Encode())
			if got := strings.Contains(body, `id="consent"`); got != tt.delegated {
				t.Errorf("delegated consent page offered = %v, want %v", got, tt.delegated)
			}
		})
	}
}
