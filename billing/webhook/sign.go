package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the request header that carries the signature.
const SignatureHeader = "Billing-Signature"

// Errors returned by Verify.
var (
	ErrInvalidHeader     = errors.New("webhook: malformed " + SignatureHeader + " header")
	ErrNoValidSignature  = errors.New("webhook: no signature matches the payload")
	ErrTimestampTooOld   = errors.New("webhook: timestamp outside the tolerance")
	ErrSecretNotProvided = errors.New("webhook: no signing secret")
)

// Sign returns the Billing-Signature header value for payload sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<payload>" keyed with
// secret>", as Stripe signs.
func Sign(payload []byte, secret string, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(payload, secret, ts))
}

func mac(payload []byte, secret, ts string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(payload)
	return m.Sum(nil)
}

// Verify checks that header (the Billing-Signature value) signs payload (the
// raw request body, unparsed) with secret, and, if tolerance is positive,
// that its timestamp is within tolerance of now. Any v1 signature in the
// header may match, so a receiver keeps working while secrets rotate.
func Verify(payload []byte, header, secret string, tolerance time.Duration, now time.Time) error {
	if secret == "" {
		return ErrSecretNotProvided
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrInvalidHeader
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrInvalidHeader
	}
	want := mac(payload, secret, ts)
	ok := false
	for _, sig := range sigs {
		ok = hmac.Equal(sig, want) || ok
	}
	if !ok {
		return ErrNoValidSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); tolerance > 0 && (d > tolerance || d < -tolerance) {
		return ErrTimestampTooOld
	}
	return nil
}
