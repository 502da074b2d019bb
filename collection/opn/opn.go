// Package opn is a small client for Opn Payments (formerly Omise) that issues
// Konbini vouchers as econtext charges. It implements collection.Provider on
// plain net/http, since no Go SDK covers payment codes and fees.
//
// The same client talks to the real API (Name "opn") and to billingd's own
// emulator in package sandbox (Name "sandbox"): only BaseURL and keys differ.
package opn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"billingd/billing"
	"billingd/collection"
)

// Defaults and limits of the Opn API.
const (
	DefaultBaseURL = "https://api.omise.co"
	APIVersion     = "2019-05-29" // sent as Omise-Version; Konbini needs 2017-11-02 or later
	MinAmount      = 200          // yen, inclusive
	MaxAmount      = 49_999       // yen, inclusive
)

// Bounds of the expires_at sent on a charge. Opn documents only the default
// validity of 30 days, so a later deadline is clamped down to 30 days from
// now (the longest validity known to be accepted), and an earlier one is
// raised to one hour from now, so that a past or imminent deadline never
// produces a voucher nobody can pay.
const (
	MaxExpiry = 30 * 24 * time.Hour
	MinExpiry = time.Hour
)

// Config configures a Client.
type Config struct {
	Name          string        // Provider name: "opn" (default) or "sandbox"
	BaseURL       string        // default DefaultBaseURL
	SecretKey     string        // skey_…, the HTTP Basic user; the password is empty
	WebhookSecret string        // base64; when set, webhooks must carry a valid signature
	HTTPClient    *http.Client  // default: a client with a 30 s timeout
	Clock         billing.Clock // for clamping expires_at; default the wall clock
}

// Client calls the Opn API. It is safe for concurrent use.
type Client struct {
	cfg        Config
	webhookKey []byte
}

var _ collection.Provider = (*Client)(nil)

// New returns a client for cfg. It fails if WebhookSecret is not base64.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = "opn"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = billing.WallClock{}
	}
	c := &Client{cfg: cfg}
	if cfg.WebhookSecret != "" {
		key, err := base64.StdEncoding.DecodeString(cfg.WebhookSecret)
		if err != nil {
			return nil, errors.New("opn: webhook secret is not base64")
		}
		c.webhookKey = key
	}
	return c, nil
}

// Name returns the configured provider name.
func (c *Client) Name() string { return c.cfg.Name }

// Limits returns Opn's econtext amount limits.
func (c *Client) Limits() collection.Limits {
	return collection.Limits{Min: MinAmount, Max: MaxAmount}
}

// Create issues an econtext charge with the payer's details normalised by
// Normalize. An invalid request fails with Validate's *billing.Error before
// any call; other errors are *collection.Error.
func (c *Client) Create(ctx context.Context, req collection.CreateRequest) (*collection.Charge, error) {
	if err := c.Validate(req); err != nil {
		return nil, err
	}
	req = Normalize(req)
	f := url.Values{
		"amount":               {strconv.FormatInt(req.Amount, 10)},
		"currency":             {"JPY"},
		"source[type]":         {"econtext"},
		"source[name]":         {req.Payer.Name},
		"source[email]":        {req.Payer.Email},
		"source[phone_number]": {req.Payer.Phone},
		"metadata[invoice_id]": {req.InvoiceID},
		"metadata[attempt_id]": {req.AttemptID},
	}
	if !req.ExpiresAt.IsZero() {
		f.Set("expires_at", c.clampExpiry(req.ExpiresAt).Format(time.RFC3339))
	}
	if req.Description != "" {
		f.Set("description", req.Description)
	}
	var ch charge
	if err := c.do(ctx, http.MethodPost, "/charges", f, &ch); err != nil {
		return nil, err
	}
	return ch.toCharge(), nil
}

// clampExpiry bounds t to [now+MinExpiry, now+MaxExpiry], in whole UTC seconds.
func (c *Client) clampExpiry(t time.Time) time.Time {
	now := c.cfg.Clock.Now().UTC().Truncate(time.Second)
	t = t.UTC().Truncate(time.Second)
	if max := now.Add(MaxExpiry); t.After(max) {
		t = max
	}
	if min := now.Add(MinExpiry); t.Before(min) {
		t = min
	}
	return t
}

// findMargin widens FindByAttempt's search back in time to absorb clock skew
// between billingd and Opn.
const findMargin = 10 * time.Minute

// FindByAttempt lists the charges created since since (less a 10 minute
// margin for clock skew), newest first, 100 a page, and returns the one whose
// metadata matches invoiceID and attemptID, or nil.
func (c *Client) FindByAttempt(ctx context.Context, invoiceID, attemptID string, since time.Time) (*collection.Charge, error) {
	from := since.Add(-findMargin).UTC().Format(time.RFC3339)
	for offset := 0; ; {
		q := url.Values{
			"from":   {from},
			"order":  {"reverse_chronological"},
			"limit":  {"100"},
			"offset": {strconv.Itoa(offset)},
		}
		var page struct {
			Data  []charge `json:"data"`
			Total int      `json:"total"`
		}
		if err := c.do(ctx, http.MethodGet, "/charges?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for i := range page.Data {
			if ch := page.Data[i].toCharge(); ch.InvoiceID == invoiceID && ch.AttemptID == attemptID {
				return ch, nil
			}
		}
		offset += len(page.Data)
		if len(page.Data) == 0 || offset >= page.Total {
			return nil, nil
		}
	}
}

// Get fetches a charge. An unknown id is a permanent *collection.Error with
// status 404 and code not_found.
func (c *Client) Get(ctx context.Context, id string) (*collection.Charge, error) {
	var ch charge
	if err := c.do(ctx, http.MethodGet, "/charges/"+url.PathEscape(id), nil, &ch); err != nil {
		return nil, err
	}
	return ch.toCharge(), nil
}

// Cancel returns nil: econtext charges cannot be voided, they expire.
func (c *Client) Cancel(ctx context.Context, id string) error { return nil }

// do sends one request (form-encoded when form is not nil) and decodes a 2xx
// response into out. Every failure is a *collection.Error.
func (c *Client) do(ctx context.Context, method, path string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, body)
	if err != nil {
		return c.errorf(0, "bad_request", false, "%v", err)
	}
	req.SetBasicAuth(c.cfg.SecretKey, "")
	req.Header.Set("Omise-Version", APIVersion)
	req.Header.Set("Accept", "application/json")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		code := "connection_error"
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			code = "timeout"
		}
		return c.errorf(0, code, true, "%v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return c.errorf(resp.StatusCode, "connection_error", true, "reading response: %v", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Code, Message string }
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		s := resp.StatusCode
		return c.errorf(s, e.Code, s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout, "%s", e.Message)
	}
	if err := json.Unmarshal(data, out); err != nil {
		// The call may have taken effect: let the caller reconcile and retry.
		return c.errorf(resp.StatusCode, "invalid_response", true, "decoding response: %v", err)
	}
	return nil
}

func (c *Client) errorf(status int, code string, temporary bool, format string, args ...any) *collection.Error {
	return &collection.Error{Provider: c.cfg.Name, Status: status, Code: code,
		Message: fmt.Sprintf(format, args...), Temporary: temporary}
}
