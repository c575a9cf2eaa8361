// Package entraemu is a local, faithful emulator of the Microsoft Entra ID
// login endpoints (discovery, JWKS, authorize, admin consent, token) and of
// the Microsoft Graph endpoints tenantsync uses (organization, users,
// users/delta, groups/delta, change-notification subscriptions with webhook
// delivery), including their errors, throttling and delta token lifecycle.
//
// It is built from the protocol notes in docs/protocol.md ("protocol §n" in
// comments) and deliberately imports no tenantsync client package
// (internal/entra, internal/graph): the emulator and the clients are written
// separately from the notes so that one shared mistake cannot hide on both
// sides. It imports only the standard library and a JWT library.
//
// Use [StartTest] in Go tests, [Start] or cmd/entraemu for development and
// docker-compose. README.md documents the seed file, the CLI and the control
// API.
package entraemu
