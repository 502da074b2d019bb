package store_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"github.com/uptrace/bun"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

// columns returns "table.column" for every column of billingd's tables.
func columns(t *testing.T, db *store.DB) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	switch db.Engine {
	case store.Postgres:
		err := db.NewRaw(`SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = 'public' AND table_name NOT LIKE 'bun_%'`).Scan(ctx, &out)
		if err != nil {
			t.Fatal(err)
		}
	case store.SQLite:
		err := db.NewRaw(`SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'bun_%' AND m.name NOT LIKE 'sqlite_%'`).Scan(ctx, &out)
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

func TestMigrationsSameSchemaOnBothDialects(t *testing.T) {
	sqlite := columns(t, storetest.Open(t, store.SQLite))
	pg := columns(t, storetest.Open(t, store.Postgres))
	if len(sqlite) < 50 {
		t.Fatalf("only %d columns found in SQLite: %v", len(sqlite), sqlite)
	}
	if !reflect.DeepEqual(sqlite, pg) {
		t.Errorf("schemas differ:\nsqlite:   %v\npostgres: %v", sqlite, pg)
	}
}

func TestPendingAndMigrate(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pending, err := db.Pending(ctx)
	if err != nil || len(pending) == 0 {
		t.Fatalf("fresh database: pending = %v, %v; want the core migration", pending, err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if pending, err := db.Pending(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("after Migrate: pending = %v, %v", pending, err)
	}

	// A newer billingd's migration: this one refuses the database.
	if _, err := db.ExecContext(ctx, "INSERT INTO bun_migrations (name, group_id, migrated_at) VALUES ('29990101000001_future', 99, CURRENT_TIMESTAMP)"); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func(context.Context) ([]string, error){"Pending": db.Pending, "Migrate": db.Migrate} {
		if _, err := call(ctx); err == nil || !strings.Contains(err.Error(), "newer billingd") || !strings.Contains(err.Error(), "29990101000001_future") {
			t.Errorf("%s on a newer schema: err = %v", name, err)
		}
	}
}

func TestSQLiteSecondOpenRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "one.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "in use by another billingd") {
		t.Fatalf("second open: err = %v, want a clear refusal", err)
	}
	db.Close()
	db2, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	db2.Close()
}

func TestTranslate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		err := db.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			return store.SetSetting(ctx, tx, "k", "v")
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Run("ENOTFOUND", func(t *testing.T) {
			var c billing.Customer
			err := db.NewSelect().Model(&c).Where("id = ?", "cus_missing").Scan(ctx)
			if got := billing.ErrorCode(store.Translate(err)); got != billing.ENOTFOUND {
				t.Errorf("code = %q, want not_found (err %v)", got, err)
			}
		})
		t.Run("ECONFLICT", func(t *testing.T) {
			_, err := db.NewRaw("INSERT INTO settings (key, value) VALUES ('k', 'w')").Exec(ctx)
			if got := billing.ErrorCode(store.Translate(err)); got != billing.ECONFLICT {
				t.Errorf("code = %q, want conflict (err %v)", got, err)
			}
		})
		t.Run("EINVALID", func(t *testing.T) {
			_, err := db.NewRaw("INSERT INTO subscription_items (id, subscription_id, plan_id, quantity) VALUES ('si_x', 'sub_missing', 'plan_missing', 1)").Exec(ctx)
			if got := billing.ErrorCode(store.Translate(err)); got != billing.EINVALID {
				t.Errorf("code = %q, want invalid (err %v)", got, err)
			}
		})
	})
}

func TestNextNumbersGaplessOnRollback(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		take := func(n int64, fail bool) int64 {
			var first int64
			err := db.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
				var err error
				first, err = store.NextNumbers(ctx, tx, "INV-", n)
				if err == nil && fail {
					return billing.Errorf(billing.EINTERNAL, "rollback")
				}
				return err
			})
			if (err != nil) != fail {
				t.Fatalf("err = %v", err)
			}
			return first
		}
		if got := take(1, false); got != 1 {
			t.Fatalf("first number = %d", got)
		}
		take(5, true) // rolled back: no gap
		if got := take(3, false); got != 2 {
			t.Fatalf("after rollback: first = %d, want 2", got)
		}
		if got := take(1, false); got != 5 {
			t.Fatalf("next = %d, want 5", got)
		}
	})
}

// TestInsertEventsVerbatim checks that event data reaches the database as it
// is: InsertEvents renders its statements ahead (store.Render), and nothing
// in the data (quotes, placeholders, non-ASCII) may be taken for SQL.
func TestInsertEventsVerbatim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		data := `{"q":"?","alias":"?TableAlias","quote":"it's","name":"顧客 \u2028"}`
		ev, err := billing.NewEvent(time.Now().UTC(), "test.event", "obj_1", json.RawMessage(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.InsertEvents(ctx, db, ev); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.NewSelect().Table("events").Column("data").Where("id = ?", ev.ID).Scan(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got != string(ev.Data) {
			t.Errorf("stored %s, want %s", got, ev.Data)
		}
	})
}
