package main

import (
	"io/fs"
	"testing"

	"github.com/tenantsync/tenantsync/migrations"
)

// TestRiverMigrationsCurrent: the checked-in River files must be exactly
// what the River version in go.mod generates, so an upgrade without
// `make river-migrations` fails here.
func TestRiverMigrationsCurrent(t *testing.T) {
	files, err := gooseFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("only %d River versions", len(files))
	}
	for name, want := range files {
		got, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Errorf("%s: %v (run make river-migrations)", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s differs from River's SQL (run make river-migrations)", name)
		}
	}
}
