// Package entra talks to Microsoft Entra ID as the multi-tenant app: app-only
// tokens per tenant (MSAL Go) with their errors classified, admin sign-in
// (OpenID Connect), and admin-consent URLs. It imports domain and retry only.
package entra
