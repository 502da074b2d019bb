package opn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"billingd/billing"
	"billingd/collection"
)

// Webhook signature headers and the accepted clock difference.
const (
	SignatureHeader    = "Omise-Signature"           // hex HMAC-SHA256, comma-separated during secret rotation
	TimestampHeader    = "Omise-Signature-Timestamp" // unix seconds
	SignatureTolerance = 5 * time.Minute
)

// ParseWebhook verifies an Opn event and returns it. When the client has a
// WebhookSecret, one of the signatures in Omise-Signature must be the hex
// HMAC-SHA256, keyed with the decoded secret, of timestamp + "." + body, and
// the timestamp must be within SignatureTolerance of now; failures are
// EUNAUTHORIZED. Without a secret any event is accepted: billingd re-fetches
// the charge anyway. A body that is not an event is EINVALID. ChargeID is
// empty for events about other objects.
func (c *Client) ParseWebhook(header http.Header, body []byte, now time.Time) (*collection.WebhookEvent, error) {
	if c.webhookKey != nil {
		if err := verify(c.webhookKey, header, body, now); err != nil {
			return nil, err
		}
	}
	var ev struct {
		Object, ID, Key string
		Data            struct{ Object, ID string }
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Object != "event" || ev.ID == "" {
		return nil, billing.Invalid("body", "webhook body is not an Opn event")
	}
	out := &collection.WebhookEvent{ID: ev.ID, Type: ev.Key, Raw: body}
	if ev.Data.Object == "charge" {
		out.ChargeID = ev.Data.ID
	}
	return out, nil
}

func verify(key []byte, header http.Header, body []byte, now time.Time) error {
	ts := header.Get(TimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return billing.Errorf(billing.EUNAUTHORIZED, "missing or malformed %s header", TimestampHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return billing.Errorf(billing.EUNAUTHORIZED, "webhook timestamp %s is outside the %s tolerance", ts, SignatureTolerance)
	}
	want := sign(key, ts, body)
	for _, s := range strings.Split(header.Get(SignatureHeader), ",") {
		if got, err := hex.DecodeString(strings.TrimSpace(s)); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return billing.Errorf(billing.EUNAUTHORIZED, "no valid webhook signature")
}

// sign returns HMAC-SHA256(key, timestamp + "." + body).
func sign(key []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return m.Sum(nil)
}
