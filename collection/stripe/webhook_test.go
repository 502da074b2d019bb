package stripekonbini_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"billingd/billing"
	stripekonbini "billingd/collection/stripe"
	"billingd/collection/stripe/stripefake"
)

func TestParseWebhook(t *testing.T) {
	c, err := stripekonbini.New(stripekonbini.Config{APIKey: apiKey, WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_780_000_000, 0)
	intentEvent := []byte(`{"id":"evt_1","object":"event","api_version":"2020-08-27","type":"payment_intent.succeeded",` +
		`"data":{"object":{"id":"pi_1","object":"payment_intent","status":"succeeded"}}}`)
	chargeEvent := []byte(`{"id":"evt_2","object":"event","api_version":"2026-03-25.dahlia","type":"charge.succeeded",` +
		`"data":{"object":{"id":"ch_1","object":"charge","payment_intent":"pi_2"}}}`)
	header := func(sig string) http.Header {
		h := http.Header{}
		if sig != "" {
			h.Set("Stripe-Signature", sig)
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		code   string // "" for success
		charge string
	}{
		{"OK", header(stripefake.Sign(secret, now.Add(-time.Minute), intentEvent)), intentEvent, "", "pi_1"},
		{"OKChargeEventGivesIntent", header(stripefake.Sign(secret, now, chargeEvent)), chargeEvent, "", "pi_2"},
		{"OKSecondSignatureDuringRotation", header(stripefake.Sign("whsec_old", now, intentEvent) + ",v1=" +
			stripefake.Sign(secret, now, intentEvent)[len("t=1780000000,v1="):]), intentEvent, "", "pi_1"},
		{"ErrWrongSecret", header(stripefake.Sign("whsec_other", now, intentEvent)), intentEvent, billing.EUNAUTHORIZED, ""},
		{"ErrStale", header(stripefake.Sign(secret, now.Add(-301*time.Second), intentEvent)), intentEvent, billing.EUNAUTHORIZED, ""},
		{"ErrBodyChanged", header(stripefake.Sign(secret, now, intentEvent)), chargeEvent, billing.EUNAUTHORIZED, ""},
		{"ErrStaleBehindAFreshTimestamp", header("t=" + strconv.FormatInt(now.Unix(), 10) + "," +
			stripefake.Sign(secret, now.Add(-time.Hour), intentEvent)), intentEvent, billing.EUNAUTHORIZED, ""},
		{"ErrNoSignature", header(""), intentEvent, billing.EUNAUTHORIZED, ""},
		{"ErrMalformedSignature", header("garbage"), intentEvent, billing.EUNAUTHORIZED, ""},
		{"ErrNotAnEvent", header(stripefake.Sign(secret, now, []byte(`{"object":"charge"}`))), []byte(`{"object":"charge"}`), billing.EINVALID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := c.ParseWebhook(tc.header, tc.body, now)
			if tc.code != "" {
				if billing.ErrorCode(err) != tc.code {
					t.Errorf("err = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.ChargeID != tc.charge || ev.ID == "" || ev.Type == "" || string(ev.Raw) != string(tc.body) {
				t.Errorf("event %+v", ev)
			}
		})
	}
}
