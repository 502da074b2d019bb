// Package collection collects invoices by Konbini: one Provider interface and
// its implementations (the opn client, also used against the built-in
// sandbox emulator, and the stripe client), plus the rules that decide
// whether and how an invoice can be collected and, by the dunning policy,
// what happens when it is not paid.
package collection

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"billingd/billing"
)

// Charge statuses, as billingd reports them on a voucher.
const (
	StatusPending    = "pending"
	StatusSuccessful = "successful"
	StatusFailed     = "failed"
	StatusExpired    = "expired"
	StatusCanceled   = "canceled"
)

// Payer is the customer data a provider needs to issue a voucher.
type Payer struct {
	Name  string
	Email string
	Phone string
}

// CreateRequest asks a provider for a Konbini voucher.
type CreateRequest struct {
	InvoiceID string    // stored in the charge's metadata as invoice_id
	AttemptID string    // unique per attempt; Stripe's Idempotency-Key, metadata attempt_id at Opn
	Amount    int64     // yen
	ExpiresAt time.Time // deadline; the provider may clamp it
	Payer     Payer
	// Description is shown at the store where the provider supports it
	// (Stripe's product_description).
	Description string
}

// Charge is a provider's view of a voucher.
type Charge struct {
	ID              string // provider's id: chrg_… or pi_…
	InvoiceID       string // from metadata
	AttemptID       string // from metadata
	Status          string // one of the Status constants
	Amount          int64
	ExpiresAt       time.Time
	PaymentCodes    []billing.PaymentCode
	InstructionsURL string
	FailureCode     string
	FailureMessage  string
	// Fee, FeeVAT and Net are known once the charge is paid (Opn); nil if the
	// provider does not report them.
	Fee, FeeVAT, Net *int64
	PaidAt           *time.Time
}

// Limits are the amounts a provider accepts for one voucher, inclusive.
type Limits struct {
	Min, Max int64
}

// WebhookEvent is a verified notification from a provider. It only tells
// which charge to re-fetch: billingd acts on what Get returns, never on the
// body alone.
type WebhookEvent struct {
	ID       string // provider's event id, for de-duplication
	Type     string // e.g. charge.complete, payment_intent.succeeded
	ChargeID string
	Raw      []byte
}

// Provider issues and looks up Konbini vouchers at one payment provider.
type Provider interface {
	// Name is "sandbox", "opn" or "stripe".
	Name() string
	// Limits returns the amounts one voucher may have.
	Limits() Limits
	// Validate checks the request against the provider's rules before any
	// call; errors are *billing.Error with code EINVALID naming the rule.
	Validate(req CreateRequest) error
	// Create issues a voucher. Errors are *Error, telling transient from permanent.
	Create(ctx context.Context, req CreateRequest) (*Charge, error)
	// FindByAttempt returns the charge created for the attempt (metadata
	// invoice_id and attempt_id), or nil if the provider has none: the look-up
	// before a retry after a crash or timeout. since is when the attempt was
	// recorded, before the first call, and bounds the search.
	FindByAttempt(ctx context.Context, invoiceID, attemptID string, since time.Time) (*Charge, error)
	// Get fetches a charge's current state from the provider.
	Get(ctx context.Context, id string) (*Charge, error)
	// Cancel makes a pending voucher unpayable where the provider allows it
	// (Stripe); providers that cannot (Opn) return nil and leave it to expire.
	Cancel(ctx context.Context, id string) error
	// ParseWebhook verifies the signature of an incoming webhook and returns
	// its event. A bad signature is a *billing.Error with code EUNAUTHORIZED.
	ParseWebhook(header http.Header, body []byte, now time.Time) (*WebhookEvent, error)
}

// Error is a failed provider call.
type Error struct {
	Provider  string
	Status    int    // HTTP status, 0 if there was no response
	Code      string // the provider's error code
	Message   string // the provider's message
	Temporary bool   // true for 5xx, 429, timeouts and connection errors: retry with backoff
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Provider, e.Status, e.Code, e.Message)
}

// IsTemporary reports whether err is worth retrying.
func IsTemporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary
	}
	return false
}
