// Package store opens billingd's database (SQLite by default, PostgreSQL when
// the URL says so) through bun, applies the embedded migrations, runs
// transactions and translates storage errors into billing errors at this
// edge, so no other package sees a driver error.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/migrate"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"billingd/billing"
	"billingd/migrations"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// QueryTimeout bounds every transaction that does not bring its own deadline.
const QueryTimeout = 60 * time.Second

// DB is billingd's database handle.
type DB struct {
	*bun.DB
	// Engine is SQLite or Postgres.
	Engine string

	lock *os.File // SQLite only: held for the life of the process
}

// Open connects to the database named by dsn: a postgres:// URL selects
// PostgreSQL; anything else is the path of a SQLite file (created if
// missing). A SQLite file may be opened by one daemon at a time: a second
// Open of the same file fails with a clear message.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("BILLING_DATABASE_URL: %w", err)
		}
		// bun renders arguments into the SQL text, so every statement is
		// unique: caching prepared statements per text would only grow memory.
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		sqldb := stdlib.OpenDB(*cfg)
		sqldb.SetMaxOpenConns(16)
		sqldb.SetMaxIdleConns(16)
		db := &DB{DB: bun.NewDB(sqldb, pgdialect.New()), Engine: Postgres}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		return db, nil
	}

	path := strings.TrimPrefix(dsn, "sqlite://")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "cache_size(-16000)") // 16 MB per connection (default 2 MB): a billing run's batches touch more
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	sqldb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		lock.Close()
		return nil, err
	}
	sqldb.SetMaxOpenConns(4)
	db := &DB{DB: bun.NewDB(sqldb, sqlitedialect.New()), Engine: SQLite, lock: lock}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	return db, nil
}

// lockFile takes an exclusive, non-blocking lock on path.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("the SQLite database %s is in use by another billingd process: SQLite is single-node; stop the other daemon or use PostgreSQL (BILLING_DATABASE_URL=postgres://…) to run several", strings.TrimSuffix(path, ".lock"))
	}
	return f, nil
}

// Close closes the database and releases the SQLite lock.
func (db *DB) Close() error {
	err := db.DB.Close()
	if db.lock != nil {
		db.lock.Close()
	}
	return err
}

func (db *DB) migrator() (*migrate.Migrator, error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(migrations.FS(db.Engine)); err != nil {
		return nil, err
	}
	return migrate.NewMigrator(db.DB, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// Migrate applies every migration not yet applied and returns their names.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("init migrations: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := unapplied(ctx, m); err != nil {
		return nil, err
	}
	g, err := m.Migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var names []string
	for _, mi := range g.Migrations {
		names = append(names, mi.Name)
	}
	return names, nil
}

// Pending returns the names of migrations not yet applied. The daemon refuses
// to start on an out-of-date schema unless told to migrate. A database
// migrated by a newer billingd (migrations this one does not know) is an
// error: this one would not know its tables.
func (db *DB) Pending(ctx context.Context) ([]string, error) {
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, err
	}
	return unapplied(ctx, m)
}

// unapplied returns the known migrations not applied, or an error if some
// applied ones are not known.
func unapplied(ctx context.Context, m *migrate.Migrator) ([]string, error) {
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, err
	}
	applied, err := m.AppliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	var names []string
	for _, mi := range ms {
		known[mi.Name] = true
		if !mi.IsApplied() {
			names = append(names, mi.Name)
		}
	}
	for _, mi := range applied {
		if !known[mi.Name] {
			return nil, fmt.Errorf("the database was migrated by a newer billingd (migration %s is unknown to this one): run that version or newer", mi.Name)
		}
	}
	return names, nil
}

// InTx runs fn in one transaction, committed if fn returns nil. The error is
// translated (see Translate). Every transaction has a deadline.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, QueryTimeout)
		defer cancel()
	}
	return Translate(db.RunInTx(ctx, nil, fn))
}

// Translate maps driver errors to billing errors: no rows → ENOTFOUND,
// unique violation → ECONFLICT, foreign-key or check violation → EINVALID,
// a busy database or serialization failure → EUNAVAILABLE. Billing errors and
// nil pass through; anything else is returned as is (internal).
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var be *billing.Error
	if errors.As(err, &be) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &billing.Error{Code: billing.ENOTFOUND, Message: "Not found."}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return &billing.Error{Code: billing.ECONFLICT, Message: "Conflict: " + pe.ConstraintName + " already exists."}
		case "23503", "23514":
			return &billing.Error{Code: billing.EINVALID, Message: "Invalid reference or value: " + pe.ConstraintName + "."}
		case "40001", "40P01", "55P03":
			return &billing.Error{Code: billing.EUNAVAILABLE, Message: "The database is busy; retry."}
		}
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &billing.Error{Code: billing.ECONFLICT, Message: "Conflict: already exists."}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, sqlite3.SQLITE_CONSTRAINT_CHECK:
			return &billing.Error{Code: billing.EINVALID, Message: "Invalid reference or value."}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return &billing.Error{Code: billing.EUNAVAILABLE, Message: "The database is busy; retry."}
		}
	}
	return err
}
