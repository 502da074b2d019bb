package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uptrace/bun"
)

// Setting reads a row of the settings table; ok is false if there is none.
func Setting(ctx context.Context, db bun.IDB, key string) (value string, ok bool, err error) {
	err = db.NewSelect().Table("settings").Column("value").Where("key = ?", key).Scan(ctx, &value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, Translate(err)
}

// SetSetting writes a row of the settings table.
func SetSetting(ctx context.Context, db bun.IDB, key, value string) error {
	_, err := db.NewRaw("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value).Exec(ctx)
	return Translate(err)
}

// NextNumbers reserves n consecutive numbers of the named sequence and
// returns the first. The increment is part of tx: a rolled-back transaction
// leaves no gap, and concurrent transactions queue on the sequence's row, so
// numbers are gapless and in commit order. Call it as late in the
// transaction as possible to keep that row lock short.
func NextNumbers(ctx context.Context, tx bun.IDB, name string, n int64) (int64, error) {
	var last int64
	err := tx.NewRaw("INSERT INTO sequences (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = sequences.value + excluded.value RETURNING value", name, n).Scan(ctx, &last)
	if err != nil {
		return 0, Translate(err)
	}
	return last - n + 1, nil
}
