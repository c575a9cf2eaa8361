package postgres_test

import (
	"io/fs"

	"github.com/tenantsync/tenantsync/migrations"
)

func readMigration(name string) (string, error) {
	b, err := fs.ReadFile(migrations.FS, name)
	return string(b), err
}
