package entraemu

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzTokenRequest posts fuzzed requests to the token endpoint (path
// segment, form body, Authorization header) and checks the answer as
// Entra's contract has it (protocol §2.5, §2.6): JSON always; a 4xx with error,
// a non-empty error_codes and "AADSTS<n>: " in error_description, never a
// 5xx; a 200 only for client credentials presenting an app's secret, with
// an access token for the app and the tenant asked for; and no
// credential the request carried (secret, assertion, code, verifier,
// refresh token) repeated in the answer.
func FuzzTokenRequest(f *testing.F) {
	cc := "grant_type=client_credentials&client_id=" + DefaultClientID + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
	f.Add(ContosoTenantID, cc+"&client_secret="+DefaultClientSecret, "")
	f.Add("contoso.example", cc+"&client_secret="+DefaultClientSecret+"&scope=openid+profile", "")
	f.Add(LitwareTenantID, cc+"&client_secret="+DefaultClientSecret, "")
	f.Add(ContosoTenantID, cc, "Basic "+base64.StdEncoding.EncodeToString([]byte(DefaultClientID+":"+url.QueryEscape(DefaultClientSecret))))
	f.Add(ContosoTenantID, cc+"&client_secret=wrong-secret-0123456789", "")
	f.Add(ContosoTenantID, "grant_type=client_credentials&client_id="+DefaultClientID+"&scope=https%3A%2F%2Fgraph.microsoft.com%2FUser.Read+00000003-0000-0000-c000-000000000000%2F.default&client_secret="+DefaultClientSecret, "")
	f.Add("organizations", cc+"&client_secret="+DefaultClientSecret, "")
	f.Add("common", "grant_type=authorization_code&client_id="+DefaultClientID+"&code=0.AXkA-not-a-code&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fauth%2Fcallback&code_verifier=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv&client_secret="+DefaultClientSecret, "")
	f.Add("organizations", "grant_type=refresh_token&client_id="+DefaultClientID+"&refresh_token=rt-0123456789abcdef&client_secret="+DefaultClientSecret, "")
	f.Add(ContosoTenantID, cc+"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJSUzI1NiIsIng1dCNTMjU2IjoiYWJjIn0.eyJpc3MiOiJ4Iiwic3ViIjoieCIsImF1ZCI6InkiLCJleHAiOjF9.c2ln", "")
	f.Add(ContosoTenantID, "grant_type=password&username=a&password=b", "")
	f.Add("9188040d-6c67-4c5b-b112-36a304b66dad", "%zz&grant_type=client_credentials", "Basic %%%")
	f.Add("", "", "Basic "+base64.StdEncoding.EncodeToString([]byte(":")))
	e, err := New(Config{Seed: SmallSeed(), Now: newClock().Now})
	if err != nil {
		f.Fatal(err)
	}
	var secrets []string
	for _, a := range e.Seed().Apps {
		for _, s := range a.Secrets {
			secrets = append(secrets, s.Value)
		}
	}
	f.Fuzz(func(t *testing.T, seg, body, authorization string) {
		r := httptest.NewRequest(http.MethodPost, "https://login.emu.example/"+url.PathEscape(seg)+"/oauth2/v2.0/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		w := httptest.NewRecorder()
		e.handleToken(w, r, seg)

		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("status %d, %q answer %q is not a JSON object: %v", w.Code, w.Header().Get("Content-Type"), w.Body, err)
		}
		form, _ := url.ParseQuery(body)
		answer := w.Body.String()
		for _, k := range []string{"client_secret", "client_assertion", "code", "code_verifier", "refresh_token"} {
			v := form.Get(k)
			if len(v) < 12 || strings.Contains(seg, v) || strings.Contains(authorization, v) {
				continue
			}
			echoed := false // a value the endpoint may quote, such as scope, can contain the credential
			for other, vs := range form {
				for _, o := range vs {
					echoed = echoed || other != k && strings.Contains(o, v)
				}
			}
			if !echoed && strings.Contains(answer, v) {
				t.Fatalf("answer repeats the request's %s: %s", k, answer)
			}
		}
		if w.Code != http.StatusOK {
			codes, _ := resp["error_codes"].([]any)
			desc, _ := resp["error_description"].(string)
			if w.Code >= 500 || w.Code < 400 || resp["error"] == "" || resp["error"] == nil || len(codes) == 0 ||
				!strings.HasPrefix(desc, "AADSTS") {
				t.Fatalf("status %d with %s", w.Code, answer)
			}
			return
		}
		_, pass, basic := r.BasicAuth()
		pass, _ = url.QueryUnescape(pass)
		presented := false
		for _, s := range secrets {
			presented = presented || form.Get("client_secret") == s || basic && pass == s
		}
		if form.Get("grant_type") != "client_credentials" || !presented {
			t.Fatalf("token issued for grant %q without an app's secret: %s", form.Get("grant_type"), answer)
		}
		at, _ := resp["access_token"].(string)
		claims := decodeJWT(t, at)
		e.mu.RLock()
		ten := e.tenant(strings.ToLower(seg))
		e.mu.RUnlock()
		if ten == nil || claims["tid"] != ten.id || claims["appid"] != strings.ToLower(clientIDOf(r, form)) || resp["token_type"] != "Bearer" {
			t.Fatalf("token for tenant %q: claims %v", seg, claims)
		}
	})
}
