package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"billingd/billing/webhook"
)

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event","type":"invoice.paid"}`)
	secret := "whsec_test"
	at := time.Unix(1_800_000_000, 0)
	header := webhook.Sign(body, secret, at)
	if !strings.HasPrefix(header, "t=1800000000,v1=") || len(header) != len("t=1800000000,v1=")+64 {
		t.Fatalf("header %q", header)
	}
	other := webhook.Sign(body, "whsec_old", at)
	rotated := header + ",v1=" + strings.SplitN(other, "v1=", 2)[1]
	cases := []struct {
		name   string
		body   string
		header string
		secret string
		now    time.Time
		want   error
	}{
		{"OK", string(body), header, secret, at.Add(time.Minute), nil},
		{"OKWithSeveralSignatures", string(body), rotated, "whsec_old", at, nil},
		{"ErrTamperedBody", string(body) + " ", header, secret, at, webhook.ErrNoValidSignature},
		{"ErrWrongSecret", string(body), header, "whsec_other", at, webhook.ErrNoValidSignature},
		{"ErrTooOld", string(body), header, secret, at.Add(6 * time.Minute), webhook.ErrTimestampTooOld},
		{"ErrFromTheFuture", string(body), header, secret, at.Add(-6 * time.Minute), webhook.ErrTimestampTooOld},
		{"ErrNoTimestamp", string(body), "v1=" + strings.SplitN(header, "v1=", 2)[1], secret, at, webhook.ErrInvalidHeader},
		{"ErrNoSignature", string(body), "t=1800000000", secret, at, webhook.ErrInvalidHeader},
		{"ErrEmptyHeader", string(body), "", secret, at, webhook.ErrInvalidHeader},
		{"ErrNoSecret", string(body), header, "", at, webhook.ErrSecretNotProvided},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify([]byte(c.body), c.header, c.secret, 5*time.Minute, c.now)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
	// A tolerance of zero checks the signature only.
	if err := webhook.Verify(body, header, secret, 0, at.Add(240*time.Hour)); err != nil {
		t.Fatalf("no tolerance: %v", err)
	}
}
