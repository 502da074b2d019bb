// Package stripekonbini implements collection.Provider for Stripe's konbini
// payment method on top of stripe-go: one PaymentIntent per voucher, created
// and confirmed in a single call whose Idempotency-Key is the attempt id.
//
// The package is named stripekonbini so that it does not shadow stripe-go's
// package stripe in the files that use both.
//
// # Status mapping
//
//	requires_action, processing            → pending
//	succeeded                              → successful
//	canceled                               → canceled
//	requires_payment_method + last error   → expired
//	anything else                          → failed (FailureCode "unexpected_status")
//
// Stripe has no "expired" status. When a voucher lapses unpaid (about an hour
// after its expires_at) Stripe sends payment_intent.payment_failed, records
// the failure in last_payment_error and moves the intent back to
// requires_payment_method. Because Create always confirms, every intent of
// ours has had a voucher, so requires_payment_method with a last_payment_error
// is reported as expired, with that error's code and message as FailureCode
// and FailureMessage. (A confirmation Stripe rejects at once makes Create
// fail instead; if such an intent is later found by FindByAttempt it also
// reads as expired, which for billingd means the same thing: this voucher
// cannot be paid, start a new attempt.)
//
// # Testing
//
// Package stripefake serves a local fake of the API for the voucher and
// webhook flow. With STRIPE_MOCK_URL set, the tests also send this client's
// requests to stripe-mock, which validates them against Stripe's OpenAPI spec.
package stripekonbini

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"

	"billingd/billing"
	"billingd/collection"
)

// Limits of a konbini payment at Stripe, in yen, inclusive.
const (
	MinAmount = 120
	MaxAmount = 300_000
)

// The window Stripe accepts for payment_method_options[konbini][expires_at]
// is "more than 30 minutes from now and less than 60 days ahead". Create
// clamps into it with a 5-minute margin on both ends for clock skew and
// request latency.
const (
	minExpiry = 30*time.Minute + 5*time.Minute
	maxExpiry = 60*24*time.Hour - 5*time.Minute
)

// Config configures a Client.
type Config struct {
	APIKey        string // secret key, sk_…; required
	WebhookSecret string // the webhook endpoint's signing secret, whsec_…
	// BaseURL is the API's base URL; empty means https://api.stripe.com.
	// Tests point it at stripefake or stripe-mock.
	BaseURL string
	// HTTPClient makes the calls; nil means stripe-go's default client
	// (80 s timeout). Deadlines on the ctx passed to each method apply too.
	HTTPClient *http.Client
	// MaxNetworkRetries is how often stripe-go itself retries a call that
	// got no response (connection error, HTTPClient timeout), reusing its
	// Idempotency-Key, after 0.5 s and more. It does not retry answers with
	// a Stripe error body, 5xx included (except 429 lock_timeout).
	// nil means stripe-go's default (2); 0 turns retries off.
	MaxNetworkRetries *int64
	// Clock is read to clamp expires_at; nil means the wall clock.
	Clock billing.Clock
}

// Client is the Stripe konbini provider.
type Client struct {
	api           *stripe.Client
	webhookSecret string
	clock         billing.Clock
}

var _ collection.Provider = (*Client)(nil)

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("stripekonbini: APIKey is required")
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: cfg.MaxNetworkRetries,
		// Errors are returned to the caller, who logs them.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.BaseURL != "" {
		bc.URL = stripe.String(cfg.BaseURL)
	}
	c := &Client{
		api:           stripe.NewClient(cfg.APIKey, stripe.WithBackends(stripe.NewBackendsWithConfig(bc))),
		webhookSecret: cfg.WebhookSecret,
		clock:         cfg.Clock,
	}
	if c.clock == nil {
		c.clock = billing.WallClock{}
	}
	return c, nil
}

// Name returns "stripe".
func (c *Client) Name() string { return "stripe" }

// Limits returns Stripe's konbini limits, ¥120 to ¥300,000.
func (c *Client) Limits() collection.Limits {
	return collection.Limits{Min: MinAmount, Max: MaxAmount}
}

// Create validates req, then creates and confirms a konbini PaymentIntent in
// one call with Idempotency-Key req.AttemptID. A zero req.ExpiresAt leaves
// the expiry to Stripe (3 days, to 23:59:59 JST); otherwise it is clamped to
// 35 minutes–60 days (less 5 minutes) from now, see minExpiry.
//
// Retrying Create with the same AttemptID within Stripe's 24 hours returns
// the same intent. If a clamped expires_at has moved between the tries,
// Stripe rejects the key as reused with other parameters; Create then looks
// the attempt up with FindByAttempt and returns what it finds if the amount
// is the same (otherwise the idempotency_error, a permanent *collection.Error).
//
// Validation errors are *billing.Error (EINVALID); API errors are
// *collection.Error.
func (c *Client) Create(ctx context.Context, req collection.CreateRequest) (*collection.Charge, error) {
	if err := c.Validate(req); err != nil {
		return nil, err
	}
	konbini := &stripe.PaymentIntentCreatePaymentMethodOptionsKonbiniParams{}
	if !req.ExpiresAt.IsZero() {
		konbini.ExpiresAt = stripe.Int64(clampExpiry(req.ExpiresAt, c.clock.Now()).Unix())
	}
	if d := storeDescription(req.Description); d != "" {
		konbini.ProductDescription = stripe.String(d)
	}
	params := &stripe.PaymentIntentCreateParams{
		Amount:             stripe.Int64(req.Amount),
		Currency:           stripe.String(string(stripe.CurrencyJPY)),
		PaymentMethodTypes: []*string{stripe.String("konbini")},
		PaymentMethodData: &stripe.PaymentIntentCreatePaymentMethodDataParams{
			Type: stripe.String("konbini"),
			BillingDetails: &stripe.PaymentIntentCreatePaymentMethodDataBillingDetailsParams{
				Name:  stripe.String(req.Payer.Name),
				Email: stripe.String(req.Payer.Email),
			},
		},
		Confirm:              stripe.Bool(true),
		PaymentMethodOptions: &stripe.PaymentIntentCreatePaymentMethodOptionsParams{Konbini: konbini},
		Metadata:             map[string]string{"invoice_id": req.InvoiceID, "attempt_id": req.AttemptID},
	}
	params.SetIdempotencyKey(req.AttemptID)
	pi, err := c.api.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.Type == stripe.ErrorTypeIdempotency {
			// The key's first request differed (expires_at clamped anew, or
			// another amount): the intent it made, if the search index has
			// it yet, is the attempt's.
			ch, ferr := c.FindByAttempt(ctx, req.InvoiceID, req.AttemptID, time.Time{})
			switch {
			case ferr != nil:
				return nil, ferr
			case ch == nil: // not indexed yet: ask again later, never give up on a live intent
				return nil, &collection.Error{Provider: "stripe", Code: "idempotency_error", Temporary: true,
					Message: "Stripe has a request under this attempt's key that its search does not show yet: " + se.Msg}
			case ch.Amount == req.Amount:
				return ch, nil
			}
		}
		return nil, wrapError(err)
	}
	return toCharge(pi), nil
}

// clampExpiry moves at into [now+minExpiry, now+maxExpiry], to whole seconds.
func clampExpiry(at, now time.Time) time.Time {
	if lo := now.Add(minExpiry); at.Before(lo) {
		at = lo.Add(time.Second - 1) // round up
	}
	if hi := now.Add(maxExpiry); at.After(hi) {
		at = hi
	}
	return at.Truncate(time.Second)
}

// FindByAttempt looks the attempt up with Stripe's Search API:
//
//	metadata['invoice_id']:'…' AND metadata['attempt_id']:'…' AND created>=…
//
// where created is bounded by since less 5 minutes of clock skew (no bound if
// since is zero). It returns the newest match, fetched again with Get, or
// nil, nil if there is none.
//
// Stripe's search index lags writes (under a minute normally, longer during
// outages), so nil does not prove that Stripe has no intent for the attempt.
// To resume an attempt, retry Create with the same AttemptID: its
// Idempotency-Key makes Stripe return the intent it created, if any, for 24
// hours. FindByAttempt is the look-up for reconciliation after that.
func (c *Client) FindByAttempt(ctx context.Context, invoiceID, attemptID string, since time.Time) (*collection.Charge, error) {
	q := fmt.Sprintf("metadata['invoice_id']:'%s' AND metadata['attempt_id']:'%s'", quote(invoiceID), quote(attemptID))
	if !since.IsZero() {
		q += fmt.Sprintf(" AND created>=%d", since.Add(-5*time.Minute).Unix())
	}
	params := &stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{Query: q, Limit: stripe.Int64(10), Single: true}}
	var found *stripe.PaymentIntent
	for pi, err := range c.api.V1PaymentIntents.Search(ctx, params).All(ctx) {
		if err != nil {
			return nil, wrapError(err)
		}
		if found == nil || pi.Created > found.Created {
			found = pi
		}
	}
	if found == nil {
		return nil, nil
	}
	return c.Get(ctx, found.ID)
}

// quote escapes s for a single-quoted string in Stripe's search syntax.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// Get retrieves the intent with latest_charge.balance_transaction expanded,
// so that a succeeded intent reports its fees: Fee is the stripe_fee part
// of the balance transaction's fee_details (its whole fee if there are no
// details), FeeVAT the tax part, Net its net; PaidAt is the charge's created
// time. They stay nil while Stripe has not made the balance transaction.
func (c *Client) Get(ctx context.Context, id string) (*collection.Charge, error) {
	params := &stripe.PaymentIntentRetrieveParams{}
	params.AddExpand("latest_charge.balance_transaction")
	pi, err := c.api.V1PaymentIntents.Retrieve(ctx, id, params)
	if err != nil {
		return nil, wrapError(err)
	}
	return toCharge(pi), nil
}

// Cancel cancels the intent, which makes its voucher unpayable. Cancelling
// an intent that is already canceled succeeds; one that succeeded is an error.
func (c *Client) Cancel(ctx context.Context, id string) error {
	_, err := c.api.V1PaymentIntents.Cancel(ctx, id, nil)
	var se *stripe.Error
	if errors.As(err, &se) && se.Code == stripe.ErrorCodePaymentIntentUnexpectedState &&
		se.PaymentIntent != nil && se.PaymentIntent.Status == stripe.PaymentIntentStatusCanceled {
		return nil
	}
	if err != nil {
		return wrapError(err)
	}
	return nil
}

// toCharge maps a PaymentIntent to billingd's view of it.
func toCharge(pi *stripe.PaymentIntent) *collection.Charge {
	ch := &collection.Charge{
		ID:        pi.ID,
		InvoiceID: pi.Metadata["invoice_id"],
		AttemptID: pi.Metadata["attempt_id"],
		Amount:    pi.Amount,
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusRequiresAction, stripe.PaymentIntentStatusProcessing:
		ch.Status = collection.StatusPending
	case stripe.PaymentIntentStatusSucceeded:
		ch.Status = collection.StatusSuccessful
	case stripe.PaymentIntentStatusCanceled:
		ch.Status = collection.StatusCanceled
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		if e := pi.LastPaymentError; e != nil {
			ch.Status = collection.StatusExpired
			ch.FailureCode, ch.FailureMessage = string(e.Code), e.Msg
		} else {
			ch.Status = collection.StatusFailed
			ch.FailureCode, ch.FailureMessage = "unexpected_status", "requires_payment_method without a failed payment"
		}
	default:
		ch.Status = collection.StatusFailed
		ch.FailureCode, ch.FailureMessage = "unexpected_status", "unexpected PaymentIntent status "+string(pi.Status)
	}
	if o := pi.PaymentMethodOptions; o != nil && o.Konbini != nil && o.Konbini.ExpiresAt != 0 {
		ch.ExpiresAt = time.Unix(o.Konbini.ExpiresAt, 0)
	}
	if na := pi.NextAction; na != nil && na.KonbiniDisplayDetails != nil {
		d := na.KonbiniDisplayDetails
		ch.ExpiresAt = time.Unix(d.ExpiresAt, 0)
		ch.InstructionsURL = d.HostedVoucherURL
		ch.PaymentCodes = paymentCodes(d.Stores)
	}
	if lc := pi.LatestCharge; lc != nil && ch.Status == collection.StatusSuccessful {
		if lc.Created != 0 {
			t := time.Unix(lc.Created, 0)
			ch.PaidAt = &t
		}
		if bt := lc.BalanceTransaction; bt != nil && bt.Object != "" { // expanded
			var fee, vat int64
			for _, d := range bt.FeeDetails {
				switch d.Type {
				case "stripe_fee":
					fee += d.Amount
				case "tax":
					vat += d.Amount
				}
			}
			if len(bt.FeeDetails) == 0 {
				fee = bt.Fee
			}
			net := bt.Net
			ch.Fee, ch.FeeVAT, ch.Net = &fee, &vat, &net
		}
	}
	return ch
}

// paymentCodes lists one code per store, in a fixed order.
func paymentCodes(s *stripe.PaymentIntentNextActionKonbiniDisplayDetailsStores) []billing.PaymentCode {
	if s == nil {
		return nil
	}
	var codes []billing.PaymentCode
	add := func(store, code, confirmation string) {
		if code != "" {
			codes = append(codes, billing.PaymentCode{Store: store, PaymentCode: code, ConfirmationNumber: confirmation})
		}
	}
	if s.FamilyMart != nil {
		add("familymart", s.FamilyMart.PaymentCode, s.FamilyMart.ConfirmationNumber)
	}
	if s.Lawson != nil {
		add("lawson", s.Lawson.PaymentCode, s.Lawson.ConfirmationNumber)
	}
	if s.Ministop != nil {
		add("ministop", s.Ministop.PaymentCode, s.Ministop.ConfirmationNumber)
	}
	if s.Seicomart != nil {
		add("seicomart", s.Seicomart.PaymentCode, s.Seicomart.ConfirmationNumber)
	}
	return codes
}

// wrapError turns a stripe-go error into a *collection.Error. Errors with an
// HTTP status are temporary for 5xx, 429 and 409 (Stripe's "another request
// with this Idempotency-Key is in progress"); errors without one (connection
// failures, timeouts, canceled contexts, unreadable responses) are temporary.
func wrapError(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &collection.Error{Provider: "stripe", Code: "connection_error", Message: err.Error(), Temporary: true}
	}
	code := string(se.Code)
	if code == "" {
		code = string(se.Type)
	}
	s := se.HTTPStatusCode
	return &collection.Error{
		Provider:  "stripe",
		Status:    s,
		Code:      code,
		Message:   se.Msg,
		Temporary: s >= 500 || s == http.StatusTooManyRequests || s == http.StatusConflict,
	}
}
