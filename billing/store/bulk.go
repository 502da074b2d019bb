package store

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// UpdateColumns sets columns cols of every row of model (a pointer to a
// slice of models whose primary key is id) to the models' values, in one
// statement.
func UpdateColumns(ctx context.Context, tx bun.IDB, model any, cols ...string) error {
	_, err := UpdateColumnsQuery(tx, model, cols...).Exec(ctx)
	return err
}

// UpdateColumnsQuery is the statement of UpdateColumns. Unlike bun's Bulk,
// whose VALUES list carries every column of the model, it sends only id and
// cols, so the database parses a fraction of the text.
func UpdateColumnsQuery(tx bun.IDB, model any, cols ...string) *bun.UpdateQuery {
	values := tx.NewValues(model).Column(append([]string{"id"}, cols...)...)
	q := tx.NewUpdate().With("_data", values).Model(model).TableExpr("_data").Where("?TableAlias.id = _data.id")
	for _, c := range cols {
		q = q.Set("? = _data.?", bun.Ident(c), bun.Ident(c))
	}
	return q
}

// A Statement is a query whose SQL text is being rendered in a goroutine
// of its own, to be run later in a transaction: see Render.
type Statement struct {
	tx   bun.IDB
	done chan struct{}
	sql  string
	err  error
}

// Render starts rendering q (a bun query whose result is not needed) for
// tx. bun renders each statement's SQL text in Go, which for the bulk
// statements of a billing run (hundreds of kilobytes each) is a good part of
// their time; rendered ahead, while the transaction does other work, it
// overlaps the database running the statements before it. The models of q
// must not change until the statement has run. A statement that is never
// run is simply dropped.
func Render(tx bun.IDB, q schema.QueryAppender) *Statement {
	s := &Statement{tx: tx, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := renderBuffers.Get().(*[]byte)
		*buf, s.err = q.AppendQuery(schema.NewQueryGen(tx.Dialect()), (*buf)[:0])
		s.sql = string(*buf)
		if cap(*buf) <= maxRenderBuffer {
			renderBuffers.Put(buf)
		}
	}()
	return s
}

// Exec waits for s to be rendered and runs it.
func (s *Statement) Exec(ctx context.Context) error {
	<-s.done
	if s.err != nil {
		return s.err
	}
	_, err := s.tx.ExecContext(ctx, s.sql)
	return err
}

// ExecAll runs qs in order in tx, each rendered ahead (see Render).
func ExecAll(ctx context.Context, tx bun.IDB, qs ...schema.QueryAppender) error {
	stmts := make([]*Statement, len(qs))
	for i, q := range qs {
		stmts[i] = Render(tx, q)
	}
	for _, s := range stmts {
		if err := s.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// renderBuffers keeps the buffers of Render, which grow to the size of a
// batch's statements, from one batch to the next (bun would grow a new one
// from 4 KB for each statement).
var renderBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxRenderBuffer = 8 << 20

// In is the condition "col IN (ids)" for a list of ids, sent as a single
// literal (an array on PostgreSQL, a JSON array on SQLite) rather than one
// literal per id, which the database parses and plans far faster for a batch
// of hundreds. col is a column expression, not user input.
func In(col string, ids []string) schema.QueryAppender {
	return inIDs{col, ids}
}

type inIDs struct {
	col string
	ids []string
}

func (in inIDs) AppendQuery(gen schema.QueryGen, b []byte) ([]byte, error) {
	ids := in.ids
	if ids == nil {
		ids = []string{}
	}
	b = append(b, in.col...)
	if gen.Dialect().Name() == dialect.PG {
		b = append(b, " = ANY("...)
		b, err := pgdialect.Array(ids).AppendQuery(gen, b)
		return append(b, "::text[])"...), err
	}
	list, err := json.Marshal(ids)
	b = append(b, " IN (SELECT value FROM json_each("...)
	b = gen.Dialect().AppendString(b, string(list))
	return append(b, "))"...), err
}
