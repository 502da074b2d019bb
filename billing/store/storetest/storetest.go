// Package storetest gives tests a real, migrated, private database: a copy
// of a migrated SQLite file, or a PostgreSQL database cloned from a migrated
// template. Nothing is mocked.
//
// PostgreSQL is found at BILLING_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/test). If it cannot be reached the
// PostgreSQL half of the suite is skipped, unless BILLING_TEST_POSTGRES=require,
// as CI sets, which turns the skip into a failure.
package storetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"billingd/billing"
	"billingd/billing/store"
)

// DefaultPostgresURL is the PostgreSQL server tests use unless told otherwise.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Dialects lists the databases every storage test runs on.
var Dialects = []string{store.SQLite, store.Postgres}

// Each runs fn as a parallel subtest on a fresh database of each dialect.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh migrated database of dialect, closed and removed when
// the test ends.
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	ctx := context.Background()
	var dsn string
	switch dialect {
	case store.SQLite:
		dsn = filepath.Join(t.TempDir(), "billingd.db")
		if err := copyFile(sqliteTemplate(t), dsn); err != nil {
			t.Fatal(err)
		}
	case store.Postgres:
		dsn = postgresDatabase(t)
	default:
		t.Fatalf("unknown dialect %q", dialect)
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// URL returns a DSN for a fresh migrated database of dialect that the test
// opens itself (for a whole daemon or a second one on the same database).
func URL(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == store.Postgres {
		return postgresDatabase(t)
	}
	dsn := filepath.Join(t.TempDir(), "billingd.db")
	if err := copyFile(sqliteTemplate(t), dsn); err != nil {
		t.Fatal(err)
	}
	return dsn
}

var sqliteTmpl struct {
	once sync.Once
	path string
	err  error
}

func sqliteTemplate(t testing.TB) string {
	sqliteTmpl.once.Do(func() {
		dir, err := os.MkdirTemp("", "billingd-sqlite-template-")
		if err != nil {
			sqliteTmpl.err = err
			return
		}
		path := filepath.Join(dir, "template.db")
		db, err := store.Open(context.Background(), path)
		if err != nil {
			sqliteTmpl.err = err
			return
		}
		if _, err := db.Migrate(context.Background()); err != nil {
			sqliteTmpl.err = err
		}
		if _, err := db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil && sqliteTmpl.err == nil {
			sqliteTmpl.err = err
		}
		db.Close()
		sqliteTmpl.path = path
	})
	if sqliteTmpl.err != nil {
		t.Fatalf("SQLite template: %v", sqliteTmpl.err)
	}
	return sqliteTmpl.path
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var pgTmpl struct {
	once sync.Once
	name string
	err  error
	skip string
}

// PostgresURL is the server's URL for the test run.
func PostgresURL() string {
	if u := os.Getenv("BILLING_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// withDatabase returns the server URL with its database name replaced.
func withDatabase(name string) string {
	u := PostgresURL()
	i := strings.LastIndex(u, "/")
	rest := ""
	if j := strings.IndexByte(u[i:], '?'); j >= 0 {
		rest = u[i+j:]
	}
	return u[:i+1] + name + rest
}

func postgresTemplate(t testing.TB) string {
	pgTmpl.once.Do(func() {
		ctx := context.Background()
		admin, err := store.Open(ctx, PostgresURL())
		if err != nil {
			pgTmpl.skip = fmt.Sprintf("PostgreSQL is not reachable at %s (%v): the PostgreSQL half of this test is skipped", PostgresURL(), err)
			return
		}
		defer admin.Close()
		name := "billingd_tmpl_" + billing.NewID("")
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			pgTmpl.err = err
			return
		}
		db, err := store.Open(ctx, withDatabase(name))
		if err != nil {
			pgTmpl.err = err
			return
		}
		_, pgTmpl.err = db.Migrate(ctx)
		db.Close()
		pgTmpl.name = name
	})
	if pgTmpl.skip != "" {
		if os.Getenv("BILLING_TEST_POSTGRES") == "require" {
			t.Fatal(pgTmpl.skip + " (BILLING_TEST_POSTGRES=require)")
		}
		t.Skip(pgTmpl.skip)
	}
	if pgTmpl.err != nil {
		t.Fatalf("PostgreSQL template: %v", pgTmpl.err)
	}
	return pgTmpl.name
}

// postgresDatabase creates a database cloned from the migrated template and
// drops it when the test ends.
func postgresDatabase(t testing.TB) string {
	t.Helper()
	tmpl := postgresTemplate(t)
	ctx := context.Background()
	admin, err := store.Open(ctx, PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "billingd_t_" + billing.NewID("")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := store.Open(context.Background(), PostgresURL())
		if err != nil {
			return
		}
		defer admin.Close()
		admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck
	})
	return withDatabase(name)
}

// DropTemplates removes this process's PostgreSQL template database. Call it
// from TestMain after m.Run.
func DropTemplates() {
	if pgTmpl.name == "" {
		return
	}
	admin, err := store.Open(context.Background(), PostgresURL())
	if err != nil {
		return
	}
	defer admin.Close()
	admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+pgTmpl.name+" WITH (FORCE)") //nolint:errcheck
}
