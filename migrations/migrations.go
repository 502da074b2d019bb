// Package migrations embeds billingd's database schema: one folder per
// dialect, applied in file-name order by bun's migrator. Both folders must
// describe the same tables and columns; a test in billing/store checks it.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migrations of dialect ("postgres" or "sqlite").
func FS(dialect string) fs.FS {
	sub, err := fs.Sub(files, dialect)
	if err != nil {
		panic(err)
	}
	return sub
}
