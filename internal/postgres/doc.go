// Package postgres is tenantsync's storage: a pgx pool, every SQL statement,
// and the goose migrations embedded from migrations/ (River's schema included).
// It imports domain only, besides its drivers.
package postgres
