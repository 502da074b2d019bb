package export

import (
	"context"
	"strings"
	"time"

	"billingd/billing/store"
)

// Every export is one SELECT, read row by row while the file is written:
// one statement sees one snapshot on both engines (so the kinds of event in
// a journal agree with each other), both drivers stream rows instead of
// buffering them, and memory does not grow with the range. Ordering is by
// the event's time, then a fixed order of event kinds, then id; the schema
// has no index on these times, so the database scans and sorts (it spills a
// large sort to disk, not to our heap).

// paid is the instant a voucher was paid: the provider's time, or when
// billingd recorded it if the provider gave none.
const paid = "COALESCE(v.paid_at, v.updated_at)"

// Event kinds of the journal, in the order they sort at the same instant:
// an invoice is finalized before its balance is applied, a payment recorded
// before the excess it leaves.
const (
	evSale     = 1
	evBalance  = 2
	evPayment  = 3
	evWriteOff = 4
	evVoid     = 5
	// A credit note sorts after the balance movement it makes (which the
	// journal skips: the credit note's entry books it).
	evCreditNote = 6
)

// eventRow is one row of the journal query. Columns a kind does not use are
// zero.
type eventRow struct {
	Ord          int       `bun:"ord"`
	At           time.Time `bun:"at"`
	ID           string    `bun:"id"`
	InvoiceID    string    `bun:"invoice_id"`
	Number       string    `bun:"number"`
	CustomerID   string    `bun:"customer_id"`
	CustomerName string    `bun:"customer_name"`
	Due          time.Time `bun:"due"`
	Amount       int64     `bun:"amount"` // invoice total, voucher amount or balance movement
	Fee          int64     `bun:"fee"`
	FeeVAT       int64     `bun:"fee_vat"`
	Net          int64     `bun:"net"`
	HasFee       int       `bun:"has_fee"`
	Breakdown    string    `bun:"breakdown"` // the invoice's tax_breakdown JSON, where needed
	Provider     string    `bun:"provider"`
	ProviderID   string    `bun:"provider_id"`
	Type         string    `bun:"bt_type"`
	Description  string    `bun:"description"`
	// Write-off arithmetic (see the package documentation):
	// sale/void/write-off: N1 = written off W; void: N2 = paid or credited
	// (reduce_amount_due) after the write-off. Payment: N1 = W, N2 = paid or
	// credited after the write-off before this payment. Flag: the invoice
	// had been written off; for a credit note: it reduces what was written
	// off.
	N1   int64 `bun:"n1"`
	N2   int64 `bun:"n2"`
	Flag int   `bun:"flag"`
	// DocNumber is a credit note's own number.
	DocNumber string `bun:"doc_number"`
	// Credits are the tax breakdowns of the credit notes that reduced the
	// invoice's amount due before the event (a write-off, a recovering
	// payment, a void), as one JSON array of breakdowns: what they leave of
	// each rate is what the event splits its amount over.
	Credits string `bun:"credits"`
}

// sumPaid returns SQL for the sum of successful payments of invoice i that
// satisfy cond (on v2), as a BIGINT.
func sumPaid(cond string) string {
	return "CAST(COALESCE((SELECT SUM(v2.amount) FROM vouchers v2 WHERE v2.invoice_id = i.id AND v2.status = 'successful' AND " +
		cond + "), 0) AS BIGINT)"
}

const paid2 = "COALESCE(v2.paid_at, v2.updated_at)"

// sumReduced returns SQL for the sum of the credit notes of invoice i that
// reduced its amount due and satisfy cond (on c2), as a BIGINT.
func sumReduced(cond string) string {
	return "CAST(COALESCE((SELECT SUM(c2.total) FROM credit_notes c2 WHERE c2.invoice_id = i.id AND c2.outcome = 'reduce_amount_due' AND " +
		cond + "), 0) AS BIGINT)"
}

// writtenOff is W: what the invoice still owed when it was marked
// uncollectible, counting payments made before that instant. The invoice's
// amount due is lowered by every reduce_amount_due credit note, so those
// issued from the write-off on are added back (a credit note at the very
// instant of the write-off counts as after it).
var writtenOff = "i.amount_due + " + sumReduced("c2.created_at >= i.marked_uncollectible_at") + " - " + sumPaid(paid2+" < i.marked_uncollectible_at")

// reducedBreakdowns returns SQL for the tax breakdowns of the credit notes
// of invoice i that reduced its amount due and satisfy cond (on c3), as one
// JSON array of breakdowns (empty if there are none). string_agg is in
// PostgreSQL and in SQLite since 3.44.
func reducedBreakdowns(cond string) string {
	return "CASE WHEN i.pre_payment_credit_notes_amount = 0 THEN '' ELSE COALESCE((SELECT '[' || string_agg(c3.tax_breakdown, ',') || ']' " +
		"FROM credit_notes c3 WHERE c3.invoice_id = i.id AND c3.outcome = 'reduce_amount_due' AND c3.tax_breakdown IS NOT NULL AND " +
		"c3.tax_breakdown <> 'null' AND " + cond + "), '') END"
}

// reducesWriteOff is true for a credit note c that lowers the amount due of
// its invoice i after the invoice was written off.
const reducesWriteOff = "c.outcome = 'reduce_amount_due' AND i.marked_uncollectible_at IS NOT NULL AND c.created_at >= i.marked_uncollectible_at"

// eventColumns are the columns of every member of the journal query.
var eventColumns = []string{"ord", "at", "id", "invoice_id", "number", "customer_id", "customer_name", "due", "amount",
	"fee", "fee_vat", "net", "has_fee", "breakdown", "provider", "provider_id", "bt_type", "description", "n1", "n2", "flag",
	"doc_number", "credits"}

// member is one kind of event of the journal query: its time, its columns
// (in the order of eventColumns) and its FROM clause.
type member struct {
	at   string
	cols []string
	from string
}

var members = map[int]member{
	evSale: {"i.finalized_at", []string{"1", "i.finalized_at", "i.id", "i.id", "COALESCE(i.number, '')", "i.customer_id", "i.customer_name",
		"COALESCE(i.due_date, i.finalized_at)", "i.total", "0", "0", "0", "0", "COALESCE(i.tax_breakdown, '')", "''", "''", "''", "''", "0", "0", "0", "''", "''"},
		"invoices i"},
	evBalance: {"b.created_at", []string{"2", "b.created_at", "b.id", "COALESCE(b.invoice_id, '')", "COALESCE(i.number, '')", "b.customer_id",
		"c.name", "b.created_at", "b.amount", "0", "0", "0", "0", "COALESCE(b.tax_breakdown, '')", "''", "''", "b.type", "b.description", "b.ending_balance", "0", "0", "''", "''"},
		"balance_transactions b JOIN customers c ON c.id = b.customer_id LEFT JOIN invoices i ON i.id = b.invoice_id"},
	evPayment: {paid, []string{"3", paid, "v.id", "v.invoice_id", "COALESCE(i.number, '')", "i.customer_id", "i.customer_name", paid,
		"v.amount", "COALESCE(v.fee, 0)", "COALESCE(v.fee_vat, 0)", "COALESCE(v.net, v.amount)", "CASE WHEN v.fee IS NULL THEN 0 ELSE 1 END",
		"CASE WHEN " + recovered + " THEN COALESCE(i.tax_breakdown, '') ELSE '' END", "v.provider", "v.provider_id", "''", "''",
		"CASE WHEN " + recovered + " THEN " + writtenOff + " ELSE 0 END",
		"CASE WHEN " + recovered + " THEN " + sumPaid(paid2+" >= i.marked_uncollectible_at AND ("+paid2+" < "+paid+" OR ("+paid2+" = "+paid+" AND v2.id < v.id))") +
			" + " + sumReduced("c2.created_at >= i.marked_uncollectible_at AND c2.created_at < "+paid) + " ELSE 0 END",
		"CASE WHEN " + recovered + " THEN 1 ELSE 0 END", "''",
		"CASE WHEN " + recovered + " THEN " + reducedBreakdowns("c3.created_at < "+paid) + " ELSE '' END"},
		"vouchers v JOIN invoices i ON i.id = v.invoice_id"},
	evWriteOff: {"i.marked_uncollectible_at", []string{"4", "i.marked_uncollectible_at", "i.id", "i.id", "COALESCE(i.number, '')", "i.customer_id",
		"i.customer_name", "i.marked_uncollectible_at", "i.total", "0", "0", "0", "0", "COALESCE(i.tax_breakdown, '')", "''", "''", "''", "''",
		writtenOff, "0", "1", "''", reducedBreakdowns("c3.created_at < i.marked_uncollectible_at")},
		"invoices i"},
	// A void reverses what the credit notes that reduced the amount due left
	// of the sale (amount: the total less them; credits: their breakdowns).
	evVoid: {"i.voided_at", []string{"5", "i.voided_at", "i.id", "i.id", "COALESCE(i.number, '')", "i.customer_id", "i.customer_name",
		"i.voided_at", "i.total", "0", "0", "0", "0", "COALESCE(i.tax_breakdown, '')", "''", "''", "''", "''",
		"CASE WHEN i.marked_uncollectible_at IS NULL THEN 0 ELSE " + writtenOff + " END",
		"CASE WHEN i.marked_uncollectible_at IS NULL THEN 0 ELSE " + sumPaid(paid2+" >= i.marked_uncollectible_at AND "+paid2+" < i.voided_at") +
			" + " + sumReduced("c2.created_at >= i.marked_uncollectible_at") + " END",
		"CASE WHEN i.marked_uncollectible_at IS NULL THEN 0 ELSE 1 END", "''",
		reducedBreakdowns("c3.created_at <= i.voided_at")},
		"invoices i"},
	evCreditNote: {"c.created_at", []string{"6", "c.created_at", "c.id", "c.invoice_id", "c.invoice_number", "c.customer_id", "c.customer_name",
		"c.effective_at", "c.total", "0", "0", "0", "0", "COALESCE(c.tax_breakdown, '')", "''", "''", "c.outcome", "c.reason", "0", "0",
		"CASE WHEN " + reducesWriteOff + " THEN 1 ELSE 0 END", "c.number", "''"},
		"credit_notes c JOIN invoices i ON i.id = c.invoice_id"},
}

// creditNoteMovement is the type of the balance movement a credit note with
// outcome customer_balance makes.
const creditNoteMovement = "credit_note"

// recovered is true for a payment on an invoice that had been written off
// and not voided when it was paid.
const recovered = "i.marked_uncollectible_at IS NOT NULL AND " + paid + " >= i.marked_uncollectible_at AND (i.voided_at IS NULL OR " + paid + " < i.voided_at)"

// eventsQuery returns the journal query for the members of kind in
// [start, end).
func eventsQuery(kind Kind, start, end time.Time) (string, []any) {
	var kinds []int
	switch kind {
	case Invoices:
		kinds = []int{evSale}
	case Payments:
		kinds = []int{evPayment}
	case Balance:
		kinds = []int{evBalance}
	case CreditNotes:
		kinds = []int{evCreditNote}
	default:
		kinds = []int{evSale, evBalance, evPayment, evWriteOff, evVoid, evCreditNote}
	}
	var parts []string
	var args []any
	for _, ev := range kinds {
		m := members[ev]
		cols := make([]string, len(m.cols))
		for i, c := range m.cols {
			cols[i] = c + " AS " + eventColumns[i]
		}
		q := "SELECT " + strings.Join(cols, ", ") + " FROM " + m.from + " WHERE " + m.at + " >= ? AND " + m.at + " < ?"
		switch ev {
		case evPayment:
			q += " AND v.status = 'successful'"
		case evBalance: // booked by the credit note's entry
			q += " AND b.type <> '" + creditNoteMovement + "'"
		}
		parts = append(parts, q)
		args = append(args, start.UTC(), end.UTC())
	}
	return strings.Join(parts, "\nUNION ALL\n") + "\nORDER BY at, ord, id", args
}

// invoiceRow is one row of the invoices table export.
type invoiceRow struct {
	ID                    string     `bun:"id"`
	Number                string     `bun:"number"`
	CustomerID            string     `bun:"customer_id"`
	CustomerName          string     `bun:"customer_name"`
	Status                string     `bun:"status"`
	TaxBehavior           string     `bun:"tax_behavior"`
	BillingReason         string     `bun:"billing_reason"`
	SubscriptionID        string     `bun:"subscription_id"`
	FinalizedAt           time.Time  `bun:"finalized_at"`
	DueDate               *time.Time `bun:"due_date"`
	Subtotal              int64      `bun:"subtotal"`
	Tax                   int64      `bun:"tax"`
	Total                 int64      `bun:"total"`
	StartingBalance       int64      `bun:"starting_balance"`
	AmountDue             int64      `bun:"amount_due"`
	AmountPaid            int64      `bun:"amount_paid"`
	AmountRemaining       int64      `bun:"amount_remaining"`
	CarriedToBalance      int64      `bun:"carried_to_balance"`
	PrePaymentCredited    int64      `bun:"pre_payment_credit_notes_amount"`
	PostPaymentCredited   int64      `bun:"post_payment_credit_notes_amount"`
	Breakdown             string     `bun:"breakdown"`
	PaidAt                *time.Time `bun:"paid_at"`
	VoidedAt              *time.Time `bun:"voided_at"`
	MarkedUncollectibleAt *time.Time `bun:"marked_uncollectible_at"`
}

const invoicesQuery = `SELECT i.id, COALESCE(i.number, '') AS number, i.customer_id, i.customer_name, i.status, i.tax_behavior,
	i.billing_reason, COALESCE(i.subscription_id, '') AS subscription_id, i.finalized_at, i.due_date, i.subtotal, i.tax, i.total,
	i.starting_balance, i.amount_due, i.amount_paid, i.amount_remaining, i.carried_to_balance,
	i.pre_payment_credit_notes_amount, i.post_payment_credit_notes_amount, COALESCE(i.tax_breakdown, '') AS breakdown, i.paid_at, i.voided_at, i.marked_uncollectible_at
	FROM invoices i WHERE i.finalized_at >= ? AND i.finalized_at < ? ORDER BY i.finalized_at, i.id`

// paymentRow is one row of the payments table export.
type paymentRow struct {
	ID           string    `bun:"id"`
	Provider     string    `bun:"provider"`
	ProviderID   string    `bun:"provider_id"`
	InvoiceID    string    `bun:"invoice_id"`
	Part         int       `bun:"part"`
	Number       string    `bun:"number"`
	CustomerID   string    `bun:"customer_id"`
	CustomerName string    `bun:"customer_name"`
	PaidAt       time.Time `bun:"paid"`
	Amount       int64     `bun:"amount"`
	Fee          *int64    `bun:"fee"`
	FeeVAT       *int64    `bun:"fee_vat"`
	Net          *int64    `bun:"net"`
}

var paymentsQuery = `SELECT v.id, v.provider, v.provider_id, v.invoice_id, v.part, COALESCE(i.number, '') AS number, i.customer_id,
	i.customer_name, ` + paid + ` AS paid, v.amount, v.fee, v.fee_vat, v.net
	FROM vouchers v JOIN invoices i ON i.id = v.invoice_id
	WHERE v.status = 'successful' AND ` + paid + ` >= ? AND ` + paid + ` < ? ORDER BY paid, v.id`

// balanceRow is one row of the balance table export.
type balanceRow struct {
	ID            string    `bun:"id"`
	CreatedAt     time.Time `bun:"created_at"`
	CustomerID    string    `bun:"customer_id"`
	CustomerName  string    `bun:"customer_name"`
	Type          string    `bun:"type"`
	Amount        int64     `bun:"amount"`
	EndingBalance int64     `bun:"ending_balance"`
	InvoiceID     string    `bun:"invoice_id"`
	Number        string    `bun:"number"`
	Description   string    `bun:"description"`
}

const balanceQuery = `SELECT b.id, b.created_at, b.customer_id, c.name AS customer_name, b.type, b.amount, b.ending_balance,
	COALESCE(b.invoice_id, '') AS invoice_id, COALESCE(i.number, '') AS number, b.description
	FROM balance_transactions b JOIN customers c ON c.id = b.customer_id LEFT JOIN invoices i ON i.id = b.invoice_id
	WHERE b.created_at >= ? AND b.created_at < ? ORDER BY b.created_at, b.id`

// stream runs query and calls fn with each row scanned into a zeroed *T,
// reading one row at a time.
func stream[T any](ctx context.Context, db *store.DB, query string, args []any, fn func(*T) error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return store.Translate(err)
	}
	defer rows.Close()
	var row T
	for rows.Next() {
		var zero T
		row = zero
		if err := db.ScanRow(ctx, rows, &row); err != nil {
			return store.Translate(err)
		}
		if err := fn(&row); err != nil {
			return err
		}
	}
	return store.Translate(rows.Err())
}

// creditNoteRow is one row of the credit notes table export.
type creditNoteRow struct {
	ID              string    `bun:"id"`
	Number          string    `bun:"number"`
	CreatedAt       time.Time `bun:"created_at"`
	EffectiveAt     time.Time `bun:"effective_at"`
	InvoiceID       string    `bun:"invoice_id"`
	InvoiceNumber   string    `bun:"invoice_number"`
	InvoiceDate     time.Time `bun:"invoice_date"`
	CustomerID      string    `bun:"customer_id"`
	CustomerName    string    `bun:"customer_name"`
	Reason          string    `bun:"reason"`
	Outcome         string    `bun:"outcome"`
	TaxBehavior     string    `bun:"tax_behavior"`
	Subtotal        int64     `bun:"subtotal"`
	Tax             int64     `bun:"tax"`
	Total           int64     `bun:"total"`
	Breakdown       string    `bun:"breakdown"`
	AmountDueBefore int64     `bun:"amount_due_before"`
	AmountDueAfter  int64     `bun:"amount_due_after"`
	Memo            string    `bun:"memo"`
}

const creditNotesQuery = `SELECT c.id, c.number, c.created_at, c.effective_at, c.invoice_id, c.invoice_number, c.invoice_date,
	c.customer_id, c.customer_name, c.reason, c.outcome, c.tax_behavior, c.subtotal, c.tax, c.total,
	COALESCE(c.tax_breakdown, '') AS breakdown, c.amount_due_before, c.amount_due_after, c.memo
	FROM credit_notes c WHERE c.created_at >= ? AND c.created_at < ? ORDER BY c.created_at, c.id`
