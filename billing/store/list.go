package store

import (
	"bytes"
	"context"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"

	"billingd/billing"
)

// Page asks for one page of a list, newest first.
type Page struct {
	Limit         int    // 1–100, default 20
	StartingAfter string // id of the last object of the previous page
}

// Normalize applies the default and checks the bounds.
func (p *Page) Normalize() error {
	if p.Limit == 0 {
		p.Limit = 20
	}
	if p.Limit < 1 || p.Limit > 100 {
		return billing.Invalid("limit", "limit must be between 1 and 100, got %d", p.Limit)
	}
	return nil
}

// List runs q (a select on a model slice whose ids sort in creation order)
// for one page, newest first, and reports whether more follow. col is the id
// column, qualified if q joins.
func List[T any](ctx context.Context, q *bun.SelectQuery, col string, p Page) ([]T, bool, error) {
	if err := p.Normalize(); err != nil {
		return nil, false, err
	}
	var out []T
	if p.StartingAfter != "" {
		q = q.Where("? < ?", bun.Ident(col), p.StartingAfter)
	}
	if err := q.OrderExpr("? DESC", bun.Ident(col)).Limit(int64(p.Limit+1)).Scan(ctx, &out); err != nil {
		return nil, false, Translate(err)
	}
	more := len(out) > p.Limit
	if more {
		out = out[:p.Limit]
	}
	return out, more, nil
}

// InsertEvents appends events to the audit trail in tx and, in the same
// transaction, queues their deliveries to the subscribed webhook endpoints
// (one more statement however many events). Given a database rather than a
// transaction, it opens one.
func InsertEvents(ctx context.Context, tx bun.IDB, events ...*billing.Event) error {
	if len(events) == 0 {
		return nil
	}
	insert := func(ctx context.Context, tx bun.IDB) error {
		return ExecAll(ctx, tx, EventStatements(tx, events)...)
	}
	switch tx.(type) {
	case bun.Tx, *bun.Tx:
		return Translate(insert(ctx, tx))
	}
	return Translate(tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return insert(ctx, tx) }))
}

// EventStatements returns the statements of InsertEvents, for ExecAll in
// the caller's transaction: none without events.
func EventStatements(tx bun.IDB, events []*billing.Event) []schema.QueryAppender {
	if len(events) == 0 {
		return nil
	}
	rows := make([]eventRow, len(events))
	ids := make([]string, len(events))
	for i, ev := range events {
		rows[i] = eventRow{ID: ev.ID, Type: ev.Type, ObjectID: ev.ObjectID, Data: sqlText(ev.Data), CreatedAt: ev.CreatedAt}
		ids[i] = ev.ID
	}
	return []schema.QueryAppender{
		tx.NewInsert().Model(&rows),
		webhookDeliveriesQuery(tx, "", nil, "?", In("ev.id", ids)),
	}
}

// eventRow is a billing.Event as InsertEvents writes it: the same columns
// (TestEventRow checks), the data appended to the statement in one copy.
// (bun appends a json.RawMessage rune by rune, and a billing run writes a
// kilobyte and more of it per invoice.)
type eventRow struct {
	bun.BaseModel `bun:"table:events"`

	ID        string    `bun:"id,pk"`
	Type      string    `bun:"type"`
	ObjectID  string    `bun:"object_id"`
	Data      sqlText   `bun:"data,type:text"`
	CreatedAt time.Time `bun:"created_at"`
}

// sqlText is text that bun appends to a statement as a string literal.
type sqlText []byte

// AppendQuery appends t quoted. Valid UTF-8 with no quote or NUL in it (the
// JSON of any event) is copied as it is; anything else is left to the
// dialect, which escapes it.
func (t sqlText) AppendQuery(gen schema.QueryGen, b []byte) ([]byte, error) {
	if t == nil {
		return append(b, "NULL"...), nil
	}
	if bytes.IndexByte(t, '\'') >= 0 || bytes.IndexByte(t, 0) >= 0 || !utf8.Valid(t) {
		return gen.Dialect().AppendString(b, string(t)), nil
	}
	b = append(b, '\'')
	b = append(b, t...)
	return append(b, '\''), nil
}

// ForUpdate locks the selected rows until the transaction ends on
// PostgreSQL. SQLite needs no row locks: its transactions are serialized
// (billingd opens them IMMEDIATE).
func (db *DB) ForUpdate(q *bun.SelectQuery) *bun.SelectQuery {
	if db.Engine == Postgres {
		return q.For("UPDATE")
	}
	return q
}

// ForUpdateIf locks the selected rows on PostgreSQL, judging the engine by
// the dialect of db (a transaction or a database).
func ForUpdateIf(q *bun.SelectQuery, db bun.IDB) *bun.SelectQuery {
	if db.Dialect().Name() == dialect.PG {
		return q.For("UPDATE")
	}
	return q
}
