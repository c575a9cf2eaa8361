// Package archrules holds no code: its test encodes which of tenantsync's
// packages may import which, so that a wrong arrow fails `make test`.
package archrules
