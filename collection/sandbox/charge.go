package sandbox

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"billingd/billing"
)

// Econtext rules, as Opn enforces them on the values it receives (the sandbox
// does not normalise: clients must send NFKC, space-free names).
const (
	minAmount     = 200
	maxAmount     = 49_999
	maxNameRunes  = 10
	defaultExpiry = 30 * 24 * time.Hour // also the latest expires_at accepted (assumed)
)

// Fees of the seed's example charge: ¥150 plus 0.5 % of the amount, plus 10 %
// consumption tax on that fee.
var (
	feeFlat = decimal.NewFromInt(150)
	feeRate = decimal.RequireFromString("0.5")  // percent
	vatRate = decimal.RequireFromString("10.0") // percent
)

// fees returns fee, fee_vat and net for amount. The fee and its VAT are each
// rounded half up to whole yen, which reproduces the seed: ¥300 → fee 151.5 →
// 152, VAT 15.2 → 15, net 300 − 152 − 15 = 133.
func fees(amount int64) (fee, vat, net int64) {
	hundred := decimal.NewFromInt(100)
	f := feeFlat.Add(decimal.NewFromInt(amount).Mul(feeRate).Div(hundred)).Round(0)
	v := f.Mul(vatRate).Div(hundred).Round(0)
	return f.IntPart(), v.IntPart(), amount - f.IntPart() - v.IntPart()
}

// charge is Opn's charge object, with the fields of the seed that matter.
type charge struct {
	Object          string            `json:"object"`
	ID              string            `json:"id"`
	Location        string            `json:"location"`
	Livemode        bool              `json:"livemode"`
	Amount          int64             `json:"amount"`
	Net             int64             `json:"net"`
	Fee             int64             `json:"fee"`
	FeeVAT          int64             `json:"fee_vat"`
	TransactionFees map[string]string `json:"transaction_fees"`
	Currency        string            `json:"currency"`
	Description     *string           `json:"description"`
	Metadata        map[string]string `json:"metadata"`
	Source          source            `json:"source"`
	FailureCode     *string           `json:"failure_code"`
	FailureMessage  *string           `json:"failure_message"`
	Status          string            `json:"status"`
	AuthorizeURI    string            `json:"authorize_uri"`
	CreatedAt       time.Time         `json:"created_at"`
	PaidAt          *time.Time        `json:"paid_at"`
	ExpiresAt       time.Time         `json:"expires_at"`
	ExpiredAt       *time.Time        `json:"expired_at"`
	Paid            bool              `json:"paid"`
	Expired         bool              `json:"expired"`
}

type source struct {
	Object       string     `json:"object"`
	ID           string     `json:"id"`
	Livemode     bool       `json:"livemode"`
	Amount       int64      `json:"amount"`
	Currency     string     `json:"currency"`
	CreatedAt    time.Time  `json:"created_at"`
	Type         string     `json:"type"`
	Flow         string     `json:"flow"`
	Name         string     `json:"name"`
	Email        string     `json:"email"`
	PhoneNumber  string     `json:"phone_number"`
	References   references `json:"references"`
	ChargeStatus string     `json:"charge_status"`
}

type references struct {
	ExpiresAt   time.Time `json:"expires_at"`
	PaymentCode string    `json:"payment_code"`
}

// apiError is an Opn error response.
type apiError struct {
	status        int
	code, message string
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{400, "bad_request", fmt.Sprintf(format, args...)}
}

func invalidCharge(format string, args ...any) *apiError {
	return &apiError{400, "invalid_charge", fmt.Sprintf(format, args...)}
}

// newCharge validates the parameters of POST /charges and returns a pending
// charge created at now, without payment code and authorize_uri.
func newCharge(p url.Values, now time.Time) (*charge, *apiError) {
	amount, err := strconv.ParseInt(p.Get("amount"), 10, 64)
	switch {
	case err != nil:
		return nil, invalidCharge("amount must be an integer")
	case !strings.EqualFold(p.Get("currency"), "JPY"):
		return nil, invalidCharge("currency is currently not supported")
	case amount < minAmount:
		return nil, invalidCharge("amount must be at least %d", minAmount)
	case amount > maxAmount:
		return nil, invalidCharge("amount must be at most %d", maxAmount)
	case p.Get("source") != "":
		return nil, badRequest("the sandbox creates sources inline only: pass source[type] and its fields")
	case p.Get("source[type]") != "econtext":
		return nil, badRequest("source type is not supported")
	}
	name, email, phone := p.Get("source[name]"), p.Get("source[email]"), p.Get("source[phone_number]")
	if n := utf8.RuneCountInString(name); n == 0 || n > maxNameRunes {
		return nil, badRequest("name must be 1 to %d characters", maxNameRunes)
	}
	for _, r := range name {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == 'ー' ||
			unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han)) {
			return nil, badRequest("name may contain only alphanumerics, hiragana, katakana or kanji")
		}
	}
	if n := utf8.RuneCountInString(email); n < 6 || n > 50 {
		return nil, badRequest("email must be 6 to 50 characters")
	}
	if len(phone) < 10 || len(phone) > 11 || strings.Trim(phone, "0123456789") != "" {
		return nil, badRequest("phone_number must be 10 to 11 digits")
	}
	expires := now.Add(defaultExpiry)
	if s := p.Get("expires_at"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil || !t.After(now) || t.After(expires) {
			return nil, invalidCharge("expires_at must be an ISO 8601 time in the next %d days", int(defaultExpiry.Hours()/24))
		}
		expires = t.UTC()
	}
	id := billing.NewID("chrg_test_")
	suffix := strings.TrimPrefix(id, "chrg_test_")
	fee, vat, net := fees(amount)
	ch := &charge{
		Object: "charge", ID: id, Location: "/charges/" + id,
		Amount: amount, Fee: fee, FeeVAT: vat, Net: net, Currency: "JPY",
		TransactionFees: map[string]string{"fee_flat": feeFlat.StringFixed(1), "fee_rate": feeRate.String(), "vat_rate": vatRate.StringFixed(1)},
		Metadata:        map[string]string{},
		Source: source{
			Object: "source", ID: "src_test_" + suffix, Amount: amount, Currency: "JPY", CreatedAt: now,
			Type: "econtext", Flow: "offline", Name: name, Email: email, PhoneNumber: phone,
			References: references{ExpiresAt: expires}, ChargeStatus: "pending",
		},
		Status: "pending", CreatedAt: now, ExpiresAt: expires,
	}
	if d := p.Get("description"); d != "" {
		ch.Description = &d
	}
	for k, v := range p {
		if key, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(key, "]") {
			ch.Metadata[strings.TrimSuffix(key, "]")] = v[0]
		}
	}
	return ch, nil
}

// failureMessages are Opn's messages for its econtext failure codes.
var failureMessages = map[string]string{
	"failed_processing": "General payment processing failure.",
	"payment_cancelled": "Payment cancelled by payer.",
	"timeout":           "Payer did not take action before charge expiration.",
}

// complete moves a pending charge to status at now; code is the failure code
// of a failed or expired charge.
func (ch *charge) complete(status, code string, now time.Time) {
	ch.Status, ch.Source.ChargeStatus = status, status
	switch status {
	case "successful":
		ch.Paid, ch.PaidAt = true, &now
		ch.FailureCode, ch.FailureMessage = nil, nil
		return
	case "expired":
		ch.Expired, ch.ExpiredAt = true, &now
	}
	msg := failureMessages[code]
	if msg == "" {
		msg = code
	}
	ch.FailureCode, ch.FailureMessage = &code, &msg
}
