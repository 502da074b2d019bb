package billing

import (
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// PrefixCreditNoteLine starts the id of a credit note line.
const PrefixCreditNoteLine = "cnli_"

// CreditNoteReason says why a credit note was issued (Stripe's reasons).
type CreditNoteReason string

// Credit note reasons.
const (
	ReasonDuplicate             CreditNoteReason = "duplicate"
	ReasonFraudulent            CreditNoteReason = "fraudulent"
	ReasonOrderChange           CreditNoteReason = "order_change"
	ReasonProductUnsatisfactory CreditNoteReason = "product_unsatisfactory"
)

// Valid reports whether r is a known reason.
func (r CreditNoteReason) Valid() bool {
	return r == ReasonDuplicate || r == ReasonFraudulent || r == ReasonOrderChange || r == ReasonProductUnsatisfactory
}

// CreditNoteOutcome is what a credit note does with the amount it credits.
type CreditNoteOutcome string

// Credit note outcomes.
const (
	// OutcomeReduceAmountDue lowers what is still due on an open (or
	// uncollectible) invoice; its live voucher is replaced by one for the
	// new amount, or the invoice closes if nothing is left to pay.
	OutcomeReduceAmountDue CreditNoteOutcome = "reduce_amount_due"
	// OutcomeCustomerBalance credits the customer's balance, which the next
	// finalized invoice uses.
	OutcomeCustomerBalance CreditNoteOutcome = "customer_balance"
	// OutcomeOutOfBand records a refund the operator made outside billingd
	// (a bank transfer, cash).
	OutcomeOutOfBand CreditNoteOutcome = "out_of_band"
)

// Valid reports whether o is a known outcome.
func (o CreditNoteOutcome) Valid() bool {
	return o == OutcomeReduceAmountDue || o == OutcomeCustomerBalance || o == OutcomeOutOfBand
}

// CreditNote is a qualified return invoice (適格返還請求書): a correction of a
// finalized invoice that credits part or all of it, numbered in its own
// gapless series, with consumption tax computed once per rate on the credit
// note. It is immutable once issued.
type CreditNote struct {
	bun.BaseModel `bun:"table:credit_notes"`

	ID                       string            `bun:"id,pk" json:"id"`
	Number                   string            `bun:"number" json:"number"`
	InvoiceID                string            `bun:"invoice_id" json:"invoice"`
	CustomerID               string            `bun:"customer_id" json:"customer"`
	Status                   string            `bun:"status" json:"status"` // issued
	Reason                   CreditNoteReason  `bun:"reason" json:"reason"`
	Outcome                  CreditNoteOutcome `bun:"outcome" json:"outcome"`
	Memo                     string            `bun:"memo" json:"memo"`
	Currency                 string            `bun:"currency" json:"currency"`
	TaxBehavior              TaxBehavior       `bun:"tax_behavior" json:"tax_behavior"`
	Subtotal                 int64             `bun:"subtotal" json:"subtotal"`
	Tax                      int64             `bun:"tax" json:"tax"`
	Total                    int64             `bun:"total" json:"total"` // tax included: what the customer is credited
	TaxBreakdown             []TaxAmount       `bun:"tax_breakdown,type:text" json:"tax_breakdown"`
	Lines                    []*CreditNoteLine `bun:"rel:has-many,join:id=credit_note_id" json:"lines"`
	AmountDueBefore          int64             `bun:"amount_due_before" json:"amount_due_before"` // the invoice's amount remaining before the credit note
	AmountDueAfter           int64             `bun:"amount_due_after" json:"amount_due_after"`   // and after it
	InvoiceNumber            string            `bun:"invoice_number" json:"invoice_number"`
	InvoiceDate              time.Time         `bun:"invoice_date" json:"invoice_date"` // the original invoice's finalization: the date of the sale
	CustomerName             string            `bun:"customer_name" json:"customer_name"`
	CustomerEmail            string            `bun:"customer_email" json:"customer_email"`
	IssuerName               string            `bun:"issuer_name" json:"issuer_name"`
	IssuerRegistrationNumber string            `bun:"issuer_registration_number" json:"issuer_registration_number"`
	EffectiveAt              time.Time         `bun:"effective_at" json:"effective_at"` // the refund date printed on the document
	CreatedAt                time.Time         `bun:"created_at" json:"created"`
}

// MarshalJSON adds the object type.
func (c CreditNote) MarshalJSON() ([]byte, error) {
	type alias CreditNote
	if c.Lines == nil {
		c.Lines = []*CreditNoteLine{}
	}
	return objectJSON("credit_note", alias(c))
}

// CreditNoteLine is one line of a credit note: part of an invoice line (by
// quantity or amount), or, for a credit note by amount, the amount at the
// invoice's one tax rate. Amounts follow the credit note's tax behavior.
type CreditNoteLine struct {
	bun.BaseModel `bun:"table:credit_note_lines"`

	ID            string     `bun:"id,pk" json:"id"`
	CreditNoteID  string     `bun:"credit_note_id" json:"-"`
	InvoiceLineID *string    `bun:"invoice_line_id" json:"invoice_line"`
	Position      int        `bun:"position" json:"-"`
	Description   string     `bun:"description" json:"description"`
	Quantity      int64      `bun:"quantity" json:"quantity"`
	UnitAmount    int64      `bun:"unit_amount" json:"unit_amount"`
	Amount        int64      `bun:"amount" json:"amount"`
	TaxRate       TaxRate    `bun:"tax_rate" json:"tax_rate"`
	PeriodStart   *time.Time `bun:"period_start" json:"period_start"`
	PeriodEnd     *time.Time `bun:"period_end" json:"period_end"`
}

// CreditNoteSeries returns the number series of a credit note issued at t:
// CreditNotePrefix ("CN-{year}-" if empty) with {year} replaced.
func (s Settings) CreditNoteSeries(t time.Time) string {
	p := s.CreditNotePrefix
	if p == "" {
		p = "CN-{year}-"
	}
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	return strings.ReplaceAll(p, "{year}", t.In(loc).Format("2006"))
}
