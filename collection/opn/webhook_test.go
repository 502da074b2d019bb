package opn

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"billingd/billing"
)

func TestParseWebhook(t *testing.T) {
	secret, other := []byte("current-secret"), []byte("previous-secret")
	c, err := New(Config{SecretKey: "skey_test", WebhookSecret: base64.StdEncoding.EncodeToString(secret)})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"object":"event","id":"evnt_test_1","key":"charge.complete","data":{"object":"charge","id":"chrg_test_1"}}`)
	now := time.Unix(1_700_000_000, 0)
	header := func(ts time.Time, keys ...[]byte) http.Header {
		h := http.Header{}
		s := strconv.FormatInt(ts.Unix(), 10)
		h.Set(TimestampHeader, s)
		for _, k := range keys {
			if v := h.Get(SignatureHeader); v != "" {
				h.Set(SignatureHeader, v+",")
			}
			h.Set(SignatureHeader, h.Get(SignatureHeader)+hex.EncodeToString(sign(k, s, body)))
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"OK", header(now, secret), true},
		{"OKWithinTolerance", header(now.Add(-4*time.Minute), secret), true},
		{"OKRotationSecondSignatureValid", header(now, other, secret), true},
		{"OKRotationFirstSignatureValid", header(now, secret, other), true},
		{"ErrWrongSecret", header(now, other), false},
		{"ErrStaleTimestamp", header(now.Add(-6*time.Minute), secret), false},
		{"ErrFutureTimestamp", header(now.Add(6*time.Minute), secret), false},
		{"ErrNoSignature", http.Header{TimestampHeader: {strconv.FormatInt(now.Unix(), 10)}}, false},
		{"ErrNoTimestamp", http.Header{SignatureHeader: {header(now, secret).Get(SignatureHeader)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := c.ParseWebhook(tc.header, body, now)
			if !tc.ok {
				if billing.ErrorCode(err) != billing.EUNAUTHORIZED {
					t.Fatalf("ParseWebhook = %v, want EUNAUTHORIZED", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != "evnt_test_1" || ev.Type != "charge.complete" || ev.ChargeID != "chrg_test_1" {
				t.Errorf("event = %+v", ev)
			}
		})
	}
	t.Run("ErrTamperedBody", func(t *testing.T) {
		tampered := []byte(`{"object":"event","id":"evnt_test_1","key":"charge.complete","data":{"object":"charge","id":"chrg_test_2"}}`)
		if _, err := c.ParseWebhook(header(now, secret), tampered, now); billing.ErrorCode(err) != billing.EUNAUTHORIZED {
			t.Fatalf("ParseWebhook = %v, want EUNAUTHORIZED", err)
		}
	})
	t.Run("OKUnsignedWithoutSecret", func(t *testing.T) {
		c, _ := New(Config{SecretKey: "skey_test"})
		if ev, err := c.ParseWebhook(http.Header{}, body, now); err != nil || ev.ChargeID != "chrg_test_1" {
			t.Fatalf("ParseWebhook = %+v, %v", ev, err)
		}
	})
	t.Run("ErrNotAnEvent", func(t *testing.T) {
		c, _ := New(Config{SecretKey: "skey_test"})
		if _, err := c.ParseWebhook(http.Header{}, []byte(`{"object":"charge"}`), now); billing.ErrorCode(err) != billing.EINVALID {
			t.Fatalf("ParseWebhook = %v, want EINVALID", err)
		}
	})
}
