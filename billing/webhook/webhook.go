package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
)

// ID prefixes of the webhook objects. A delivery's id is "wd_" followed by
// the suffixes of its event's and endpoint's ids (see
// store.QueueWebhookDeliveries).
const (
	PrefixEndpoint = "we_"
	PrefixAttempt  = "wa_"
)

// EventDisabled is the type of the event recorded when an endpoint is
// disabled, by the operator or because it kept failing.
const EventDisabled = "webhook_endpoint.disabled"

// eventTypes are the event types an endpoint may subscribe to; "*" is all.
var eventTypes = []string{
	"invoice.created", "invoice.finalized", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
	"invoice.voided", "invoice.marked_uncollectible", "invoice.will_be_due", "invoice.overdue",
	"invoice.collection_action_required", "invoice.voucher_created", "invoice.voucher_expired",
	"invoice.voucher_reissued", "invoice.voucher_canceled", "subscription.created", "subscription.updated",
	"subscription.canceled", "customer.created", "customer.updated", "plan.created", "credit_note.created",
	"email.sent", "email.deferred", "email.failed", EventDisabled, "*",
}

// Delivery statuses.
const (
	StatusPending   = "pending"   // to be delivered, or retried at NextAttemptAt
	StatusSucceeded = "succeeded" // the endpoint answered 2xx
	StatusFailed    = "failed"    // given up after the retry window while the endpoint worked for other events
)

// Disable reasons.
const (
	ReasonOperator = "operator" // POST … {"disabled": true}
	ReasonFailing  = "failing"  // no successful delivery for the whole retry window
)

// Endpoint is a URL of the operator's application that receives the events
// of the types it subscribed to. It is enabled while DisabledAt is nil.
type Endpoint struct {
	bun.BaseModel `bun:"table:webhook_endpoints,alias:e"`

	ID             string     `bun:"id,pk" json:"id"`
	URL            string     `bun:"url" json:"url"`
	Events         []string   `bun:"events,type:text" json:"events"`
	Secret         string     `bun:"secret" json:"-"`
	DisabledAt     *time.Time `bun:"disabled_at" json:"disabled_at"`
	DisabledReason string     `bun:"disabled_reason" json:"disabled_reason,omitempty"`
	FailingSince   *time.Time `bun:"failing_since" json:"failing_since"` // first failed attempt since the last success
	CreatedAt      time.Time  `bun:"created_at" json:"created"`

	reveal bool // show the secret (only in the answer to its creation)
}

// MarshalJSON adds the object type and status, and the secret when the
// endpoint was just created.
func (e Endpoint) MarshalJSON() ([]byte, error) {
	type alias Endpoint
	out := struct {
		Object string `json:"object"`
		alias
		Status string `json:"status"`
		Secret string `json:"secret,omitempty"`
	}{Object: "webhook_endpoint", alias: alias(e), Status: "enabled"}
	if e.DisabledAt != nil {
		out.Status = "disabled"
	}
	if e.reveal {
		out.Secret = e.Secret
	}
	return json.Marshal(out)
}

// Delivery is one event to deliver to one endpoint, written in the
// transaction that recorded the event.
type Delivery struct {
	bun.BaseModel `bun:"table:webhook_deliveries,alias:d"`

	ID               string     `bun:"id,pk" json:"id"`
	EndpointID       string     `bun:"endpoint_id" json:"endpoint"`
	EventID          string     `bun:"event_id" json:"event"`
	EventType        string     `bun:"event_type" json:"event_type"`
	ObjectID         string     `bun:"object_id" json:"object_id"`
	Status           string     `bun:"status" json:"status"`
	AttemptCount     int        `bun:"attempts" json:"attempt_count"`
	NextAttemptAt    time.Time  `bun:"next_attempt_at" json:"next_attempt_at"`
	RetryFrom        time.Time  `bun:"retry_from" json:"-"` // the retry window runs from here
	LastAttemptAt    *time.Time `bun:"last_attempt_at" json:"last_attempt_at"`
	LastResponseCode *int       `bun:"last_response_code" json:"last_response_code"`
	LastError        string     `bun:"last_error" json:"last_error,omitempty"`
	DeliveredAt      *time.Time `bun:"delivered_at" json:"delivered_at"`
	CreatedAt        time.Time  `bun:"created_at" json:"created"`
	Attempts         []*Attempt `bun:"-" json:"attempts"`
}

// MarshalJSON adds the object type and hides the next attempt once there is
// none.
func (d Delivery) MarshalJSON() ([]byte, error) {
	type alias Delivery
	out := struct {
		Object string `json:"object"`
		alias
		NextAttemptAt *time.Time `json:"next_attempt_at"`
	}{Object: "webhook_delivery", alias: alias(d)}
	if d.Status == StatusPending {
		out.NextAttemptAt = &d.NextAttemptAt
	}
	if out.Attempts == nil {
		out.Attempts = []*Attempt{}
	}
	return json.Marshal(out)
}

// Attempt is one HTTP request of a delivery and its outcome.
type Attempt struct {
	bun.BaseModel `bun:"table:webhook_attempts,alias:a"`

	ID           string    `bun:"id,pk" json:"id"`
	DeliveryID   string    `bun:"delivery_id" json:"-"`
	AttemptedAt  time.Time `bun:"attempted_at" json:"attempted_at"`
	ResponseCode *int      `bun:"response_code" json:"response_code"` // nil if no response came
	Error        string    `bun:"error" json:"error,omitempty"`
	DurationMS   int64     `bun:"duration_ms" json:"duration_ms"`
}

// Service manages webhook endpoints and delivers their events. Run and Next
// make it a scheduled job; Routes serves its part of the API.
type Service struct {
	DB     *store.DB
	Clock  billing.Clock
	Logger *slog.Logger
	// AllowPrivate lets endpoints use loopback and private addresses
	// (BILLING_WEBHOOK_ALLOW_PRIVATE; tests).
	AllowPrivate bool
	// Timeout bounds one delivery attempt (default 10 s).
	Timeout time.Duration
	// Window is how long a delivery is retried (default three days).
	Window time.Duration
	// Concurrency is the most deliveries in flight at once (default 8).
	Concurrency int
	// Wait is how long Run waits for the deliveries it started before it
	// returns and leaves them to finish in the background (default 1 s), so
	// responsive receivers are served in the order of the (test) clock and
	// a slow one delays no other job.
	Wait time.Duration
	// Client sends the requests; by default one with Timeout that refuses
	// private addresses unless AllowPrivate and follows no redirects.
	Client *http.Client

	once     sync.Once
	claimMu  sync.Mutex // one claim at a time in this process
	mu       sync.Mutex
	inflight map[string]bool
	closed   bool
	wg       sync.WaitGroup
}

func (s *Service) init() {
	s.once.Do(func() {
		if s.Timeout == 0 {
			s.Timeout = 10 * time.Second
		}
		if s.Window == 0 {
			s.Window = 72 * time.Hour
		}
		if s.Concurrency == 0 {
			s.Concurrency = 8
		}
		if s.Wait == 0 {
			s.Wait = time.Second
		}
		if s.Client == nil {
			s.Client = newClient(s.Timeout, s.Concurrency, s.AllowPrivate)
		}
		s.inflight = map[string]bool{}
	})
}

// EndpointParams creates or updates an endpoint; nil fields are left as
// they are.
type EndpointParams struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	// Disabled pauses the endpoint (true) or re-enables it (false), which
	// redelivers the events it missed.
	Disabled *bool `json:"disabled"`
}

// checkEvents validates and deduplicates a list of event types.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, billing.Invalid("events", "events must list at least one event type (or \"*\" for all)")
	}
	var out []string
	for _, t := range events {
		if !slices.Contains(eventTypes, t) {
			return nil, billing.Invalid("events", "events: unknown event type %q; known types: %s", t, strings.Join(eventTypes, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Create registers an endpoint and returns it with its signing secret, the
// only time the secret is shown.
func (s *Service) Create(ctx context.Context, p EndpointParams) (*Endpoint, error) {
	if p.URL == nil {
		return nil, billing.Invalid("url", "url is required")
	}
	if p.Events == nil {
		return nil, billing.Invalid("events", "events is required")
	}
	if p.Disabled != nil {
		return nil, billing.Invalid("disabled", "a new endpoint is enabled; disable it with an update")
	}
	events, err := checkEvents(*p.Events)
	if err != nil {
		return nil, err
	}
	if err := CheckURL(ctx, *p.URL, s.AllowPrivate); err != nil {
		return nil, err
	}
	e := &Endpoint{ID: billing.NewID(PrefixEndpoint), URL: *p.URL, Events: events, Secret: "whsec_" + billing.NewToken(),
		CreatedAt: s.Clock.Now().UTC(), reveal: true}
	err = s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(e).Exec(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Get returns an endpoint.
func (s *Service) Get(ctx context.Context, id string) (*Endpoint, error) {
	return s.get(ctx, s.DB, id, false)
}

func (s *Service) get(ctx context.Context, db bun.IDB, id string, lock bool) (*Endpoint, error) {
	e := new(Endpoint)
	q := db.NewSelect().Model(e).Where("id = ?", id)
	if lock {
		q = store.ForUpdateIf(q, db)
	}
	if err := q.Scan(ctx); err != nil {
		if billing.ErrorCode(store.Translate(err)) == billing.ENOTFOUND {
			return nil, billing.NotFound("webhook_endpoint", id)
		}
		return nil, store.Translate(err)
	}
	return e, nil
}

// List returns a page of endpoints, newest first.
func (s *Service) List(ctx context.Context, p store.Page) ([]*Endpoint, bool, error) {
	return store.List[*Endpoint](ctx, s.DB.NewSelect().Model((*Endpoint)(nil)), "id", p)
}

// Update changes an endpoint's URL or events, disables it, or re-enables
// it: its pending deliveries are retried at once with a new retry window,
// and the events of its types recorded while it was disabled are queued.
func (s *Service) Update(ctx context.Context, id string, p EndpointParams) (*Endpoint, error) {
	var events []string
	if p.Events != nil {
		var err error
		if events, err = checkEvents(*p.Events); err != nil {
			return nil, err
		}
	}
	if p.URL != nil {
		if err := CheckURL(ctx, *p.URL, s.AllowPrivate); err != nil {
			return nil, err
		}
	}
	var e *Endpoint
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if e, err = s.get(ctx, tx, id, true); err != nil {
			return err
		}
		now := s.Clock.Now().UTC()
		if p.URL != nil {
			e.URL = *p.URL
		}
		if events != nil {
			e.Events = events
		}
		disable := p.Disabled != nil && *p.Disabled && e.DisabledAt == nil
		enable := p.Disabled != nil && !*p.Disabled && e.DisabledAt != nil
		if disable {
			e.DisabledAt, e.DisabledReason = &now, ReasonOperator
		}
		if enable {
			e.DisabledAt, e.DisabledReason, e.FailingSince = nil, "", nil
		}
		if _, err := tx.NewUpdate().Model(e).Column("url", "events", "disabled_at", "disabled_reason", "failing_since").WherePK().Exec(ctx); err != nil {
			return err
		}
		if disable {
			return s.disabledEvent(ctx, tx, e, now)
		}
		if enable {
			return s.redeliver(ctx, tx, e, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// redeliver makes e's pending deliveries due at now with a new retry window
// and queues the events of its types recorded since it was disabled.
func (s *Service) redeliver(ctx context.Context, tx bun.Tx, e *Endpoint, now time.Time) error {
	_, err := tx.NewUpdate().Model((*Delivery)(nil)).Set("next_attempt_at = ?", now).Set("retry_from = ?", now).
		Where("endpoint_id = ?", e.ID).Where("status = ?", StatusPending).Exec(ctx)
	if err != nil {
		return err
	}
	// Events after the last one queued for e (or after e's creation) that
	// were not queued: those recorded while it was disabled. Ids sort in
	// creation order, so this is a range of the events' primary key. (Not
	// by created_at: an event carries its job's instant, which may be
	// earlier than the disabling it followed.)
	after := "evt_" + strings.TrimPrefix(e.ID, PrefixEndpoint)
	var last []string
	if err := tx.NewSelect().Model((*Delivery)(nil)).Column("event_id").Where("endpoint_id = ?", e.ID).
		OrderExpr("id DESC").Limit(1).Scan(ctx, &last); err != nil {
		return err
	}
	if len(last) == 1 && last[0] > after {
		after = last[0]
	}
	return store.QueueWebhookDeliveries(ctx, tx, e.ID, &now, "ev.id > ?", after)
}

// disabledEvent records that e was disabled (the endpoint's other
// subscribers are told).
func (s *Service) disabledEvent(ctx context.Context, tx bun.IDB, e *Endpoint, now time.Time) error {
	ev, err := billing.NewEvent(now, EventDisabled, e.ID, e)
	if err != nil {
		return err
	}
	return store.InsertEvents(ctx, tx, ev)
}

// Deliveries returns a page of an endpoint's deliveries, newest event
// first, each with its attempts; status, if not empty, filters them.
func (s *Service) Deliveries(ctx context.Context, endpointID, status string, p store.Page) ([]*Delivery, bool, error) {
	if _, err := s.Get(ctx, endpointID); err != nil {
		return nil, false, err
	}
	q := s.DB.NewSelect().Model((*Delivery)(nil)).Where("endpoint_id = ?", endpointID)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	ds, more, err := store.List[*Delivery](ctx, q, "id", p)
	if err != nil || len(ds) == 0 {
		return ds, more, err
	}
	ids := make([]string, len(ds))
	byID := make(map[string]*Delivery, len(ds))
	for i, d := range ds {
		ids[i], byID[d.ID] = d.ID, d
	}
	var as []*Attempt
	if err := s.DB.NewSelect().Model(&as).Where("delivery_id IN (?)", bun.In(ids)).Order("id").Scan(ctx); err != nil {
		return nil, false, store.Translate(err)
	}
	for _, a := range as {
		d := byID[a.DeliveryID]
		d.Attempts = append(d.Attempts, a)
	}
	return ds, more, nil
}
