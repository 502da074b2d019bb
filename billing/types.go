package billing

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// The domain types double as the bun models of their tables: one struct per
// table and no mapping layer. JSON tags give the API's (Stripe-shaped) form.

// Customer is someone an operator bills.
type Customer struct {
	bun.BaseModel `bun:"table:customers"`

	ID                 string            `bun:"id,pk" json:"id"`
	Name               string            `bun:"name" json:"name"`
	Email              string            `bun:"email" json:"email"`
	Phone              string            `bun:"phone" json:"phone"`
	KanaName           string            `bun:"kana_name" json:"kana_name"`
	Language           string            `bun:"language" json:"language"` // "ja" or "en"
	Address            string            `bun:"address" json:"address"`
	RegistrationNumber string            `bun:"registration_number" json:"registration_number"`
	Metadata           map[string]string `bun:"metadata,type:text" json:"metadata"`
	Balance            int64             `bun:"balance" json:"balance"` // negative: credit the customer can use
	CreatedAt          time.Time         `bun:"created_at" json:"created"`
}

// MarshalJSON adds the object type.
func (c Customer) MarshalJSON() ([]byte, error) {
	type alias Customer
	return objectJSON("customer", alias(c))
}

// Interval is the unit of a plan's billing period.
type Interval string

// Intervals.
const (
	Day   Interval = "day"
	Week  Interval = "week"
	Month Interval = "month"
	Year  Interval = "year"
)

// Valid reports whether i is a known interval.
func (i Interval) Valid() bool { return i == Day || i == Week || i == Month || i == Year }

// Plan is a recurring price. Plans are immutable once created; a new price is
// a new plan, as with Stripe prices.
type Plan struct {
	bun.BaseModel `bun:"table:plans"`

	ID            string      `bun:"id,pk" json:"id"`
	Name          string      `bun:"name" json:"name"`
	Amount        int64       `bun:"amount" json:"amount"`
	Currency      string      `bun:"currency" json:"currency"`
	Interval      Interval    `bun:"interval" json:"interval"`
	IntervalCount int         `bun:"interval_count" json:"interval_count"`
	TaxRate       TaxRate     `bun:"tax_rate" json:"tax_rate"`
	TaxBehavior   TaxBehavior `bun:"tax_behavior" json:"tax_behavior"`
	CreatedAt     time.Time   `bun:"created_at" json:"created"`
	// BillingTiming says when a period is invoiced: at its start (in
	// advance, the default) or at its end (in arrears, 月末締め).
	BillingTiming BillingTiming `bun:"billing_timing" json:"billing_timing"`
}

// BillingTiming is when a plan's period is invoiced.
type BillingTiming string

// Billing timings.
const (
	BillInAdvance BillingTiming = "in_advance" // the invoice for a period is issued when it starts
	BillInArrears BillingTiming = "in_arrears" // the invoice for a period is issued when it ends (月末締め)
)

// Valid reports whether t is a known timing.
func (t BillingTiming) Valid() bool { return t == BillInAdvance || t == BillInArrears }

// MarshalJSON adds the object type.
func (p Plan) MarshalJSON() ([]byte, error) {
	type alias Plan
	return objectJSON("plan", alias(p))
}

// SubscriptionStatus is where a subscription is in its life.
type SubscriptionStatus string

// Subscription statuses.
const (
	SubscriptionActive   SubscriptionStatus = "active"
	SubscriptionPastDue  SubscriptionStatus = "past_due"
	SubscriptionCanceled SubscriptionStatus = "canceled"
	SubscriptionTrialing SubscriptionStatus = "trialing" // in its free trial: nothing is billed until TrialEnd
)

// Subscription bills a customer for one or more plans every period, in
// advance: the invoice for a period is issued when the period starts (or,
// for plans billed in arrears, when it ends).
//
// NextBillingAt is the next instant the billing run has work: the start of
// the first period not yet invoiced (in advance), the end of the current
// period (in arrears), or the end of the trial; billing runs pick every live
// subscription whose NextBillingAt has passed.
type Subscription struct {
	bun.BaseModel `bun:"table:subscriptions"`

	ID                 string              `bun:"id,pk" json:"id"`
	CustomerID         string              `bun:"customer_id" json:"customer"`
	Status             SubscriptionStatus  `bun:"status" json:"status"`
	Items              []*SubscriptionItem `bun:"rel:has-many,join:id=subscription_id" json:"items"`
	Interval           Interval            `bun:"interval" json:"interval"`
	IntervalCount      int                 `bun:"interval_count" json:"interval_count"`
	StartDate          time.Time           `bun:"start_date" json:"start_date"`
	BillingCycleAnchor time.Time           `bun:"billing_cycle_anchor" json:"billing_cycle_anchor"`
	DaysUntilDue       int                 `bun:"days_until_due" json:"days_until_due"`
	CurrentPeriodStart *time.Time          `bun:"current_period_start" json:"current_period_start"`
	CurrentPeriodEnd   *time.Time          `bun:"current_period_end" json:"current_period_end"`
	NextBillingAt      *time.Time          `bun:"next_billing_at" json:"next_billing_at"`
	CancelAtPeriodEnd  bool                `bun:"cancel_at_period_end" json:"cancel_at_period_end"`
	CanceledAt         *time.Time          `bun:"canceled_at" json:"canceled_at"`
	EndedAt            *time.Time          `bun:"ended_at" json:"ended_at"`
	Dunning            *DunningPolicy      `bun:"dunning,type:text" json:"dunning"` // overrides of the operator's dunning policy; nil: none
	CreatedAt          time.Time           `bun:"created_at" json:"created"`
	// TrialStart and TrialEnd bound the free trial, if any: no invoice
	// (or a ¥0 one, by setting) until TrialEnd, when the first period starts.
	TrialStart *time.Time `bun:"trial_start" json:"trial_start"`
	TrialEnd   *time.Time `bun:"trial_end" json:"trial_end"`
	// PauseBehavior, if set, pauses collection: invoices are still created
	// each period but kept as drafts, marked uncollectible or voided
	// (PauseKeepAsDraft, …) until PauseResumesAt, or until unpaused.
	PauseBehavior  string     `bun:"pause_behavior" json:"-"`
	PauseResumesAt *time.Time `bun:"pause_resumes_at" json:"-"`
	// HasPendingItems says that invoice items (prorations) wait for the
	// subscription's next invoice; billing runs load them only then.
	HasPendingItems bool `bun:"has_pending_items" json:"-"`
}

// Pause behaviors of a subscription's pause_collection, as Stripe's.
const (
	PauseKeepAsDraft       = "keep_as_draft"
	PauseMarkUncollectible = "mark_uncollectible"
	PauseVoid              = "void"
)

// PauseCollection is a subscription's pause_collection in the API.
type PauseCollection struct {
	Behavior  string     `json:"behavior"`
	ResumesAt *time.Time `json:"resumes_at"`
}

// MarshalJSON adds the object type and pause_collection.
func (s Subscription) MarshalJSON() ([]byte, error) {
	type alias Subscription
	var pause *PauseCollection
	if s.PauseBehavior != "" {
		pause = &PauseCollection{Behavior: s.PauseBehavior, ResumesAt: s.PauseResumesAt}
	}
	return json.Marshal(struct {
		Object string `json:"object"`
		alias
		PauseCollection *PauseCollection `json:"pause_collection"`
	}{"subscription", alias(s), pause})
}

// SubscriptionItem is one plan, times a quantity, on a subscription.
type SubscriptionItem struct {
	bun.BaseModel `bun:"table:subscription_items"`

	ID             string `bun:"id,pk" json:"id"`
	SubscriptionID string `bun:"subscription_id" json:"-"`
	PlanID         string `bun:"plan_id" json:"plan"`
	Plan           *Plan  `bun:"rel:belongs-to,join:plan_id=id" json:"-"`
	Quantity       int64  `bun:"quantity" json:"quantity"`
}

// InvoiceStatus is where an invoice is in its life: draft → open → paid,
// void or uncollectible.
type InvoiceStatus string

// Invoice statuses.
const (
	InvoiceDraft         InvoiceStatus = "draft"
	InvoiceOpen          InvoiceStatus = "open"
	InvoicePaid          InvoiceStatus = "paid"
	InvoiceVoid          InvoiceStatus = "void"
	InvoiceUncollectible InvoiceStatus = "uncollectible"
)

// Invoice is a bill for a customer. Drafts can be edited; finalizing gives it a
// number and freezes it (corrections are a void and a new invoice). The
// issuer's and recipient's details are copied in at finalization so the
// document stays what was issued.
type Invoice struct {
	bun.BaseModel `bun:"table:invoices"`

	ID                       string         `bun:"id,pk" json:"id"`
	Number                   *string        `bun:"number" json:"number"`
	Status                   InvoiceStatus  `bun:"status" json:"status"`
	CustomerID               string         `bun:"customer_id" json:"customer"`
	SubscriptionID           *string        `bun:"subscription_id" json:"subscription"`
	BillingReason            string         `bun:"billing_reason" json:"billing_reason"`
	Currency                 string         `bun:"currency" json:"currency"`
	TaxBehavior              TaxBehavior    `bun:"tax_behavior" json:"tax_behavior"`
	PeriodStart              *time.Time     `bun:"period_start" json:"period_start"`
	PeriodEnd                *time.Time     `bun:"period_end" json:"period_end"`
	DaysUntilDue             int            `bun:"days_until_due" json:"days_until_due"`
	DueDate                  *time.Time     `bun:"due_date" json:"due_date"`
	Subtotal                 int64          `bun:"subtotal" json:"subtotal"`
	Tax                      int64          `bun:"tax" json:"tax"`
	Total                    int64          `bun:"total" json:"total"`
	StartingBalance          int64          `bun:"starting_balance" json:"starting_balance"` // customer balance applied at finalization: + owed before, − credit used
	AmountDue                int64          `bun:"amount_due" json:"amount_due"`
	AmountPaid               int64          `bun:"amount_paid" json:"amount_paid"`
	AmountRemaining          int64          `bun:"amount_remaining" json:"amount_remaining"`
	CarriedToBalance         int64          `bun:"carried_to_balance" json:"carried_to_balance"` // below the provider minimum: moved to the next invoice
	PrePaymentCreditNotes    int64          `bun:"pre_payment_credit_notes_amount" json:"pre_payment_credit_notes_amount"`
	PostPaymentCreditNotes   int64          `bun:"post_payment_credit_notes_amount" json:"post_payment_credit_notes_amount"`
	TaxBreakdown             []TaxAmount    `bun:"tax_breakdown,type:text" json:"tax_breakdown"`
	Lines                    []*InvoiceLine `bun:"rel:has-many,join:id=invoice_id" json:"lines"`
	CustomerName             string         `bun:"customer_name" json:"customer_name"`
	CustomerEmail            string         `bun:"customer_email" json:"customer_email"`
	IssuerName               string         `bun:"issuer_name" json:"issuer_name"`
	IssuerRegistrationNumber string         `bun:"issuer_registration_number" json:"issuer_registration_number"`
	CollectionStatus         string         `bun:"collection_status" json:"collection_status"`
	CollectionError          string         `bun:"collection_error" json:"collection_error,omitempty"`
	PayToken                 string         `bun:"pay_token" json:"-"`
	HostedInvoiceURL         string         `bun:"-" json:"hosted_invoice_url"`
	Collection               *Voucher       `bun:"-" json:"collection"` // the live (or latest) voucher
	CreatedAt                time.Time      `bun:"created_at" json:"created"`
	FinalizedAt              *time.Time     `bun:"finalized_at" json:"finalized_at"`
	PaidAt                   *time.Time     `bun:"paid_at" json:"paid_at"`
	VoidedAt                 *time.Time     `bun:"voided_at" json:"voided_at"`
	MarkedUncollectibleAt    *time.Time     `bun:"marked_uncollectible_at" json:"marked_uncollectible_at"`
}

// MarshalJSON adds the object type. It writes the invoice in one pass, with
// no reflection: every finalization snapshots its invoice into an event, so
// a billing run marshals one per invoice it issues. The output is exactly
// what encoding/json writes for the struct with "object" first
// (TestInvoiceJSON compares them), so a field added to Invoice or
// InvoiceLine must be added here too.
func (in Invoice) MarshalJSON() ([]byte, error) {
	o := jsonObject{b: make([]byte, 0, 1024+320*len(in.Lines))}
	o.str("object", "invoice")
	o.str("id", in.ID)
	o.strPtr("number", in.Number)
	o.str("status", string(in.Status))
	o.str("customer", in.CustomerID)
	o.strPtr("subscription", in.SubscriptionID)
	o.str("billing_reason", in.BillingReason)
	o.str("currency", in.Currency)
	o.str("tax_behavior", string(in.TaxBehavior))
	o.timePtr("period_start", in.PeriodStart)
	o.timePtr("period_end", in.PeriodEnd)
	o.int("days_until_due", int64(in.DaysUntilDue))
	o.timePtr("due_date", in.DueDate)
	o.int("subtotal", in.Subtotal)
	o.int("tax", in.Tax)
	o.int("total", in.Total)
	o.int("starting_balance", in.StartingBalance)
	o.int("amount_due", in.AmountDue)
	o.int("amount_paid", in.AmountPaid)
	o.int("amount_remaining", in.AmountRemaining)
	o.int("carried_to_balance", in.CarriedToBalance)
	o.int("pre_payment_credit_notes_amount", in.PrePaymentCreditNotes)
	o.int("post_payment_credit_notes_amount", in.PostPaymentCreditNotes)
	o.key("tax_breakdown")
	if in.TaxBreakdown == nil {
		o.b = append(o.b, "null"...)
	} else {
		o.b = append(o.b, '[')
		for i, t := range in.TaxBreakdown {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			to := jsonObject{b: o.b}
			to.str("rate", string(t.Rate))
			to.int("percent", t.Percent)
			to.int("taxable_amount", t.TaxableAmount)
			to.int("tax", t.Tax)
			o.b = append(to.b, '}')
		}
		o.b = append(o.b, ']')
	}
	o.key("lines")
	if in.Lines == nil {
		o.b = append(o.b, "null"...)
	} else {
		o.b = append(o.b, '[')
		for i, l := range in.Lines {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			if l == nil {
				o.b = append(o.b, "null"...)
				continue
			}
			lo := jsonObject{b: o.b}
			lo.str("id", l.ID)
			lo.str("description", l.Description)
			lo.strPtr("plan", l.PlanID)
			lo.int("quantity", l.Quantity)
			lo.int("unit_amount", l.UnitAmount)
			lo.int("amount", l.Amount)
			lo.str("tax_rate", string(l.TaxRate))
			lo.timePtr("period_start", l.PeriodStart)
			lo.timePtr("period_end", l.PeriodEnd)
			lo.bool("proration", l.Proration)
			o.b, o.err = append(lo.b, '}'), errors.Join(o.err, lo.err)
		}
		o.b = append(o.b, ']')
	}
	o.str("customer_name", in.CustomerName)
	o.str("customer_email", in.CustomerEmail)
	o.str("issuer_name", in.IssuerName)
	o.str("issuer_registration_number", in.IssuerRegistrationNumber)
	o.str("collection_status", in.CollectionStatus)
	if in.CollectionError != "" {
		o.str("collection_error", in.CollectionError)
	}
	o.str("hosted_invoice_url", in.HostedInvoiceURL)
	o.key("collection")
	if in.Collection == nil {
		o.b = append(o.b, "null"...)
	} else {
		v, err := in.Collection.MarshalJSON() // compact, as encoding/json would leave it
		o.b, o.err = append(o.b, v...), errors.Join(o.err, err)
	}
	o.time("created", in.CreatedAt)
	o.timePtr("finalized_at", in.FinalizedAt)
	o.timePtr("paid_at", in.PaidAt)
	o.timePtr("voided_at", in.VoidedAt)
	o.timePtr("marked_uncollectible_at", in.MarkedUncollectibleAt)
	if o.err != nil {
		return nil, o.err
	}
	return append(o.b, '}'), nil
}

// Collection statuses of an invoice: where issuing its voucher stands.
const (
	CollectionNone           = "none"            // nothing to collect (draft, paid by balance, ¥0)
	CollectionPending        = "pending"         // a voucher must be issued; the collection worker will
	CollectionActive         = "active"          // a live voucher awaits payment
	CollectionActionRequired = "action_required" // the provider refused; CollectionError says why
	CollectionCanceling      = "canceling"       // the invoice ended; its live voucher is being canceled
)

// TaxAmount is one rate's line in an invoice's tax breakdown: the taxable
// amount excluding tax and the tax, rounded once for the whole invoice.
type TaxAmount struct {
	Rate          TaxRate `json:"rate"`
	Percent       int64   `json:"percent"`
	TaxableAmount int64   `json:"taxable_amount"`
	Tax           int64   `json:"tax"`
}

// InvoiceLine is one line of an invoice. Amount is Quantity × UnitAmount, or
// a prorated part of it, and includes tax when the invoice's TaxBehavior is
// inclusive.
type InvoiceLine struct {
	bun.BaseModel `bun:"table:invoice_lines"`

	ID          string     `bun:"id,pk" json:"id"`
	InvoiceID   string     `bun:"invoice_id" json:"-"`
	Position    int        `bun:"position" json:"-"`
	Description string     `bun:"description" json:"description"`
	PlanID      *string    `bun:"plan_id" json:"plan"`
	Quantity    int64      `bun:"quantity" json:"quantity"`
	UnitAmount  int64      `bun:"unit_amount" json:"unit_amount"`
	Amount      int64      `bun:"amount" json:"amount"`
	TaxRate     TaxRate    `bun:"tax_rate" json:"tax_rate"`
	PeriodStart *time.Time `bun:"period_start" json:"period_start"`
	PeriodEnd   *time.Time `bun:"period_end" json:"period_end"`
	// Proration marks a line that charges or credits part of a period
	// because the subscription changed during it.
	Proration bool `bun:"proration" json:"proration"`
}

// InvoiceItem is a line waiting for an invoice, as Stripe's invoice items:
// the prorations of a subscription change (credit for the unused time of
// the old items, charge for the new ones) go on the subscription's next
// invoice. Status says where it went: pending, invoiced (InvoiceID),
// credited (part of a net credit moved to the customer's balance as a
// proration_credit, or of prorations that cancel out) or deleted (dropped
// by an immediate cancellation).
type InvoiceItem struct {
	bun.BaseModel `bun:"table:invoice_items"`

	ID             string     `bun:"id,pk" json:"id"`
	CustomerID     string     `bun:"customer_id" json:"customer"`
	SubscriptionID *string    `bun:"subscription_id" json:"subscription"`
	Status         string     `bun:"status" json:"status"`
	Description    string     `bun:"description" json:"description"`
	PlanID         *string    `bun:"plan_id" json:"plan"`
	Quantity       int64      `bun:"quantity" json:"quantity"`
	UnitAmount     int64      `bun:"unit_amount" json:"unit_amount"`
	Amount         int64      `bun:"amount" json:"amount"`
	TaxRate        TaxRate    `bun:"tax_rate" json:"tax_rate"`
	Proration      bool       `bun:"proration" json:"proration"`
	PeriodStart    *time.Time `bun:"period_start" json:"period_start"`
	PeriodEnd      *time.Time `bun:"period_end" json:"period_end"`
	InvoiceID      *string    `bun:"invoice_id" json:"invoice"`
	CreatedAt      time.Time  `bun:"created_at" json:"created"`
}

// Invoice item statuses.
const (
	ItemPending  = "pending"
	ItemInvoiced = "invoiced"
	ItemCredited = "credited"
	ItemDeleted  = "deleted"
)

// MarshalJSON adds the object type.
func (it InvoiceItem) MarshalJSON() ([]byte, error) {
	type alias InvoiceItem
	return objectJSON("invoiceitem", alias(it))
}

// Voucher is a Konbini charge created at a payment provider to collect an
// invoice: the customer pays it in cash at a store before it expires. The
// row is written before the provider is called (ProviderID empty until the
// provider answers), so a crash or timeout is recovered by looking the
// attempt up at the provider instead of creating a second voucher. A
// partial unique index allows one live (pending) voucher per invoice part.
type Voucher struct {
	bun.BaseModel `bun:"table:vouchers"`

	ID              string        `bun:"id,pk" json:"id"`
	InvoiceID       string        `bun:"invoice_id" json:"invoice"`
	Part            int           `bun:"part" json:"part"` // 0, or 1…n when an amount above the provider's maximum is split
	Provider        string        `bun:"provider" json:"provider"`
	ProviderID      string        `bun:"provider_id" json:"provider_id"` // chrg_… or pi_…; empty while being created
	Status          string        `bun:"status" json:"status"`           // pending, successful, failed, expired, canceled
	Amount          int64         `bun:"amount" json:"amount"`
	ExpiresAt       *time.Time    `bun:"expires_at" json:"expires_at"`
	PaymentCodes    []PaymentCode `bun:"payment_codes,type:text" json:"payment_codes"`
	InstructionsURL string        `bun:"instructions_url" json:"instructions_url"`
	Fee             *int64        `bun:"fee" json:"fee"`
	FeeVAT          *int64        `bun:"fee_vat" json:"fee_vat"`
	Net             *int64        `bun:"net" json:"net"`
	FailureCode     string        `bun:"failure_code" json:"failure_code,omitempty"`
	FailureMessage  string        `bun:"failure_message" json:"failure_message,omitempty"`
	Attempts        int           `bun:"attempts" json:"-"`        // provider calls made to create it
	NextAttemptAt   *time.Time    `bun:"next_attempt_at" json:"-"` // when the worker may call the provider again
	NextReminderAt  *time.Time    `bun:"next_reminder_at" json:"-"`
	PaidAt          *time.Time    `bun:"paid_at" json:"paid_at"`
	CreatedAt       time.Time     `bun:"created_at" json:"created"`
	UpdatedAt       time.Time     `bun:"updated_at" json:"updated"`
}

// MarshalJSON adds the object type.
func (v Voucher) MarshalJSON() ([]byte, error) {
	type alias Voucher
	if v.PaymentCodes == nil {
		v.PaymentCodes = []PaymentCode{}
	}
	return objectJSON("voucher", alias(v))
}

// PaymentCode is what the customer tells the till; Stripe gives one per store.
type PaymentCode struct {
	Store              string `json:"store,omitempty"`
	PaymentCode        string `json:"payment_code"`
	ConfirmationNumber string `json:"confirmation_number,omitempty"`
}

// Event is one entry of the audit trail, written in the same transaction as
// the state change it records. Data is a snapshot of the object after it.
type Event struct {
	bun.BaseModel `bun:"table:events"`

	ID        string          `bun:"id,pk" json:"id"`
	Type      string          `bun:"type" json:"type"`
	ObjectID  string          `bun:"object_id" json:"object_id"`
	Data      json.RawMessage `bun:"data,type:text" json:"data"`
	CreatedAt time.Time       `bun:"created_at" json:"created"`
}

// MarshalJSON adds the object type.
func (e Event) MarshalJSON() ([]byte, error) {
	type alias Event
	return objectJSON("event", alias(e))
}

// objectJSON encodes v (an alias of an API type, so that its own
// MarshalJSON is not called again) with "object" as its first field, the
// way Stripe tags every object.
func objectJSON(object string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(b) < 2 || b[0] != '{' {
		return b, err
	}
	head := `{"object":"` + object + `"`
	if len(b) > 2 { // a non-empty object: separate the fields
		head += ","
	}
	return append([]byte(head), b[1:]...), nil
}

// NewEvent returns an event of type typ for the object with the given id,
// its data the JSON of obj, created at now.
func NewEvent(now time.Time, typ, objectID string, obj any) (*Event, error) {
	var data []byte
	var err error
	if m, ok := obj.(json.Marshaler); ok {
		data, err = m.MarshalJSON() // skips json.Marshal's second pass over the output
	} else {
		data, err = json.Marshal(obj)
	}
	if err != nil {
		return nil, err
	}
	return &Event{ID: NewID(PrefixEvent), Type: typ, ObjectID: objectID, Data: data, CreatedAt: now}, nil
}

// Task is a side effect to carry out after the transaction that recorded it
// commits (create a voucher, send an e-mail, deliver a webhook): the outbox.
// Key makes a task unique so a retried state change cannot enqueue it twice.
type Task struct {
	bun.BaseModel `bun:"table:tasks"`

	ID        string     `bun:"id,pk"`
	Kind      string     `bun:"kind"`
	Key       string     `bun:"key"`
	ObjectID  string     `bun:"object_id"`
	RunAt     time.Time  `bun:"run_at"`
	Status    string     `bun:"status"` // pending, done, failed
	Attempts  int        `bun:"attempts"`
	LastError string     `bun:"last_error"`
	DoneAt    *time.Time `bun:"done_at"`
	CreatedAt time.Time  `bun:"created_at"`
}

// BalanceTransaction is one entry of a customer's append-only balance
// ledger. A positive Amount increases what the customer owes (a carry-over
// to the next invoice); a negative one is a credit (an excess payment).
type BalanceTransaction struct {
	bun.BaseModel `bun:"table:balance_transactions"`

	ID            string  `bun:"id,pk" json:"id"`
	CustomerID    string  `bun:"customer_id" json:"customer"`
	Type          string  `bun:"type" json:"type"` // carry_over, applied_to_invoice, invoice_voided, excess_payment, proration_credit, credit_note
	Amount        int64   `bun:"amount" json:"amount"`
	EndingBalance int64   `bun:"ending_balance" json:"ending_balance"`
	InvoiceID     *string `bun:"invoice_id" json:"invoice"`
	Description   string  `bun:"description" json:"description"`
	// TaxBreakdown splits a proration credit by tax rate (negative
	// amounts): consideration given back, which reduces sales and tax.
	TaxBreakdown []TaxAmount `bun:"tax_breakdown,type:text" json:"tax_breakdown,omitempty"`
	CreatedAt    time.Time   `bun:"created_at" json:"created"`
}

// MarshalJSON adds the object type.
func (b BalanceTransaction) MarshalJSON() ([]byte, error) {
	type alias BalanceTransaction
	return objectJSON("customer_balance_transaction", alias(b))
}

// Document is a PDF as it was issued (an invoice or a receipt), kept with its
// SHA-256 and never regenerated: what the customer got is what the operator
// downloads.
type Document struct {
	bun.BaseModel `bun:"table:documents"`

	ID        string    `bun:"id,pk"`
	InvoiceID string    `bun:"invoice_id"`
	Kind      string    `bun:"kind"` // invoice, receipt
	SHA256    string    `bun:"sha256"`
	Content   []byte    `bun:"content"`
	CreatedAt time.Time `bun:"created_at"`
}

// jsonObject appends a JSON object to b one member at a time, as
// encoding/json writes it (strings HTML-escaped, times in RFC 3339), for
// the hand-written MarshalJSON methods. The caller appends the closing '}'.
type jsonObject struct {
	b   []byte
	n   int   // members written
	err error // the first value that cannot be encoded
}

// key starts the member named k (plain ASCII: no escaping needed).
func (o *jsonObject) key(k string) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObject) strPtr(k string, v *string) {
	if v == nil {
		o.key(k)
		o.b = append(o.b, "null"...)
		return
	}
	o.str(k, *v)
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObject) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObject) time(k string, v time.Time) {
	o.key(k)
	o.b = append(o.b, '"')
	var err error
	if o.b, err = v.AppendText(o.b); err != nil && o.err == nil {
		o.err = err // a year outside 0–9999, as Time.MarshalJSON
	}
	o.b = append(o.b, '"')
}

func (o *jsonObject) timePtr(k string, v *time.Time) {
	if v == nil {
		o.key(k)
		o.b = append(o.b, "null"...)
		return
	}
	o.time(k, *v)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it: quotes, backslashes and control characters; <, > and & (HTML);
// U+2028 and U+2029; invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
