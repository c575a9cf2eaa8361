package entra

import (
	"net/url"
	"strings"
)

// GraphDefaultScope asks admin consent for every Graph permission in the
// app registration; application permissions can only be requested with
// /.default (protocol §1.1).
const GraphDefaultScope = "https://graph.microsoft.com/.default"

// AdminConsentURL returns the v2 admin-consent URL for tenantID (protocol §1.1):
// {host}/{tenant}/v2.0/adminconsent?client_id&scope&redirect_uri&state. An
// empty state leaves the parameter out (a link an admin opens on their own).
func AdminConsentURL(authorityHost, tenantID, clientID, redirectURI, state string) string {
	q := url.Values{}
	q.Set("client_id", clientID)
	q.Set("scope", GraphDefaultScope)
	q.Set("redirect_uri", redirectURI)
	if state != "" {
		q.Set("state", state)
	}
	return strings.TrimRight(authorityHost, "/") + "/" + url.PathEscape(tenantID) + "/v2.0/adminconsent?" + q.Encode()
}
