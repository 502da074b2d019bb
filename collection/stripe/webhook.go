package stripekonbini

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"billingd/billing"
	"billingd/collection"
)

// WebhookTolerance is how old a Stripe-Signature timestamp may be.
const WebhookTolerance = 300 * time.Second

// ParseWebhook verifies the Stripe-Signature header of body with
// webhook.ConstructEventWithOptions and returns the event. ChargeID is the
// PaymentIntent's id for payment_intent.* events, and the object's
// payment_intent for others that have one (charge.*).
//
// stripe-go measures the tolerance against the wall clock, so the signature
// is checked with IgnoreTolerance and the timestamp is then compared with
// now here: older than WebhookTolerance is rejected. The event's API version
// is not checked (IgnoreAPIVersionMismatch): only the id, type and object id
// are read, and billingd re-fetches the intent with Get before acting.
//
// A missing, malformed, wrong or stale signature is EUNAUTHORIZED; a signed
// body that is not an event is EINVALID.
func (c *Client) ParseWebhook(header http.Header, body []byte, now time.Time) (*collection.WebhookEvent, error) {
	sig := header.Get("Stripe-Signature")
	if c.webhookSecret == "" {
		return nil, billing.Errorf(billing.EUNAUTHORIZED, "stripe: no webhook secret configured")
	}
	ev, err := webhook.ConstructEventWithOptions(body, sig, c.webhookSecret, webhook.ConstructEventOptions{
		IgnoreTolerance:          true,
		IgnoreAPIVersionMismatch: true,
	})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		return nil, billing.Errorf(billing.EUNAUTHORIZED, "stripe webhook: %v", err)
	case err != nil:
		return nil, billing.Invalid("body", "stripe webhook: %v", err)
	}
	t, ok := signatureTime(sig)
	if !ok || now.Sub(t) > WebhookTolerance {
		return nil, billing.Errorf(billing.EUNAUTHORIZED, "stripe webhook: signature timestamp %s is more than %s before %s",
			t.UTC().Format(time.RFC3339), WebhookTolerance, now.UTC().Format(time.RFC3339))
	}
	out := &collection.WebhookEvent{ID: ev.ID, Type: string(ev.Type), Raw: body}
	if ev.Data != nil {
		obj := ev.Data.Object
		if obj["object"] == "payment_intent" {
			out.ChargeID, _ = obj["id"].(string)
		} else {
			out.ChargeID, _ = obj["payment_intent"].(string)
		}
	}
	return out, nil
}

// signatureTime returns the t= timestamp of a Stripe-Signature header. A
// header with more than one is refused: the signature is checked against
// one of them, and the age must be checked against the same.
func signatureTime(header string) (time.Time, bool) {
	var t time.Time
	found := false
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || found {
				return time.Time{}, false
			}
			t, found = time.Unix(n, 0), true
		}
	}
	return t, found
}
