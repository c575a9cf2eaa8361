package entra

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tenantsync/tenantsync/internal/domain"
)

// FuzzSignInClaims judges fuzzed ID token claims, as Verify does once the
// signature, aud and lifetime passed (protocol §4.5), and checks both ways
// that an identity comes out exactly when tid is a GUID other than the
// personal-account tenant, iss is {host}/{tid}/v2.0 and the nonce is the
// sign-in's; that the identity carries the claims, its tenant in lower
// case; and that a refusal is unauthorized or a personal account and does
// not repeat the nonce.
func FuzzSignInClaims(f *testing.F) {
	const host = "https://login.microsoftonline.com"
	const tid = "98c7e7b9-8621-4041-9670-f4938facd9f6"
	claims := func(iss, tid string) []byte {
		b, _ := json.Marshal(map[string]any{"iss": iss, "tid": tid, "oid": "c18ec85d-fdbd-4cd0-982e-6e0d13b31cd6",
			"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "preferred_username": "admin@contoso.example",
			"name": "Contoso Admin", "wids": []string{RoleGlobalAdministrator, "b79fbf4d-3ef9-4689-8143-76b194e85509"},
			"roles": []string{"Operator"}, "nonce": "n-0S6_WzA2Mj", "aud": "9aeffa6e-8ae6-492f-8c6d-a12d870c10f0"})
		return b
	}
	f.Add(claims(host+"/"+tid+"/v2.0", tid), "n-0S6_WzA2Mj")
	f.Add(claims(host+"/"+strings.ToUpper(tid)+"/v2.0", strings.ToUpper(tid)), "n-0S6_WzA2Mj")
	f.Add(claims(host+"/"+tid+"/v2.0", tid), "")
	f.Add(claims(host+"/"+tid+"/v2.0", tid), "n-0S6_WzA2Mk")
	f.Add(claims(host+"/{tenantid}/v2.0", tid), "n-0S6_WzA2Mj")
	f.Add(claims(host+"/"+PersonalAccountTenantID+"/v2.0", PersonalAccountTenantID), "n-0S6_WzA2Mj")
	f.Add(claims("https://sts.windows.net/"+tid+"/", tid), "n-0S6_WzA2Mj")
	f.Add(claims(host+"/contoso.onmicrosoft.com/v2.0", "contoso.onmicrosoft.com"), "n-0S6_WzA2Mj")
	f.Add([]byte(`{"iss":"https://login.microsoftonline.com/98c7e7b9-8621-4041-9670-f4938facd9f6/v2.0","tid":"98c7e7b9-8621-4041-9670-f4938facd9f6","nonce":"","wids":null}`), "")
	f.Add([]byte(`{"tid":["x"],"wids":"62e90394-69f5-4237-9190-012177145e10"}`), "x")
	s, err := NewSignIn(SignInConfig{AuthorityHost: host + "/", ClientID: "9aeffa6e-8ae6-492f-8c6d-a12d870c10f0",
		ClientSecret: "fuzz", RedirectURL: testRedirect})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, nonce string) {
		var c idClaims
		var std struct {
			Subject string `json:"sub"`
			Nonce   string `json:"nonce"`
		}
		// go-oidc reads sub and nonce from the same payload, then Claims
		// decodes the rest: a payload either decodes both ways or not at all.
		if json.Unmarshal(payload, &c) != nil || json.Unmarshal(payload, &std) != nil {
			return
		}
		id, err := s.identity(c, std.Subject, std.Nonce, nonce)
		ok := domain.IsGUID(c.TenantID) && c.Issuer == host+"/"+c.TenantID+"/v2.0" && nonce != "" && std.Nonce == nonce &&
			!strings.EqualFold(c.TenantID, PersonalAccountTenantID)
		if (err == nil) != ok {
			t.Fatalf("claims %s with nonce %q: err %v, want accepted=%v", payload, nonce, err, ok)
		}
		if err != nil {
			if !errors.Is(err, domain.ErrUnauthorized) && !errors.Is(err, ErrPersonalAccount) {
				t.Fatalf("refusal %v is neither unauthorized nor a personal account", err)
			}
			for _, n := range []string{nonce, std.Nonce} {
				if len(n) >= 6 && strings.Contains(err.Error(), n) {
					t.Fatalf("refusal %q repeats a nonce", err)
				}
			}
			return
		}
		if id.TenantID != strings.ToLower(c.TenantID) || !domain.IsGUID(id.TenantID) || id.ObjectID != c.ObjectID ||
			id.Subject != std.Subject || id.Username != c.PreferredUsername || id.Name != c.Name ||
			!slices.Equal(id.DirectoryRoles, c.Wids) || !slices.Equal(id.AppRoles, c.Roles) {
			t.Fatalf("identity %+v from claims %s", id, payload)
		}
	})
}
