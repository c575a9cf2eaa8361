// Command rivergen writes River's schema migrations as goose files into
// migrations/, one file per River version (docs/libraries.md §3: one combined file
// fails on PG15 because version 4 adds an enum value that version 6 uses).
// Run it with `make river-migrations` after upgrading River.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tenantsync/tenantsync/internal/postgres"
)

func main() {
	dir := flag.String("dir", "migrations", "folder of the goose migrations")
	flag.Parse()
	files, err := postgres.RiverGooseFiles()
	if err != nil {
		log.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(*dir, name), []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Println("wrote", filepath.Join(*dir, name))
	}
}
