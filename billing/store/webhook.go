package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// QueueWebhookDeliveries inserts, in tx, one pending delivery of each event
// matched by cond (a condition on the events table, aliased ev, with its
// arguments) to every enabled webhook endpoint subscribed to the event's
// type, or only to endpoint endpointID if it is not empty. It is a single
// INSERT … SELECT whatever the number of events, and finds nothing to do
// when no endpoint is enabled. A delivery that already exists is left as it
// is. at, if not nil, is when the deliveries become due and their retry
// window starts; otherwise each event's creation time is.
func QueueWebhookDeliveries(ctx context.Context, tx bun.IDB, endpointID string, at *time.Time, cond string, condArgs ...any) error {
	_, err := webhookDeliveriesQuery(tx, endpointID, at, cond, condArgs...).Exec(ctx)
	return err
}

// webhookDeliveriesQuery is the statement of QueueWebhookDeliveries.
func webhookDeliveriesQuery(tx bun.IDB, endpointID string, at *time.Time, cond string, condArgs ...any) *bun.RawQuery {
	find := "instr" // the endpoint's events column is a JSON array of types
	if tx.Dialect().Name() == dialect.PG {
		find = "strpos"
	}
	due, args := "ev.created_at", []any{}
	if at != nil {
		due, args = "?", append(args, at.UTC(), at.UTC())
	}
	q := `INSERT INTO webhook_deliveries
		(id, endpoint_id, event_id, event_type, object_id, status, attempts, next_attempt_at, retry_from, last_error, created_at)
		SELECT 'wd_' || substr(ev.id, 5) || substr(e.id, 4), e.id, ev.id, ev.type, ev.object_id, 'pending', 0, ` + due + `, ` + due + `, '', ev.created_at
		FROM webhook_endpoints e CROSS JOIN events ev
		WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE disabled_at IS NULL) -- evaluated once: no endpoint, no work
		AND e.disabled_at IS NULL
		AND (` + find + `(e.events, '"' || ev.type || '"') > 0 OR ` + find + `(e.events, '"*"') > 0)`
	if endpointID != "" {
		q += ` AND e.id = ?`
		args = append(args, endpointID)
	}
	q += ` AND (` + cond + `) ON CONFLICT (id) DO NOTHING`
	return tx.NewRaw(q, append(args, condArgs...)...)
}
