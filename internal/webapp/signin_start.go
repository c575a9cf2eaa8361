package webapp

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
)

// signinStart keeps a fresh state, nonce and PKCE verifier in the session
// and sends the browser to Entra's authorize endpoint; account=select asks
// Entra to let the user pick another account.
func (s *Server) signinStart(c echo.Context) error {
	p := pendingSignIn{
		State:    randomToken(),
		Nonce:    randomToken(),
		Verifier: oauth2.GenerateVerifier(),
		ReturnTo: safeReturn(c.QueryParam("return")),
		Issued:   s.now(),
	}
	s.sessions.Put(c.Request().Context(), keySignIn, p)
	if c.QueryParam("account") == "select" {
		return c.Redirect(http.StatusFound, s.signin.AuthCodeURLSelectAccount(p.State, p.Nonce, p.Verifier))
	}
	return c.Redirect(http.StatusFound, s.signin.AuthCodeURL(p.State, p.Nonce, p.Verifier))
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
