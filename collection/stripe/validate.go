package stripekonbini

import (
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"

	"billingd/billing"
	"billingd/collection"
)

// MaxDescription is the most characters Stripe shows at the store
// (payment_method_options[konbini][product_description]).
const MaxDescription = 22

// Validate checks req against Stripe's konbini rules before any call:
// invoice_id and attempt_id present, attempt_id at most 255 bytes (Stripe's
// limit for an Idempotency-Key), amount ¥120–¥300,000, payer name and e-mail
// present, and a description of at most 22 JIS X 0208 characters after
// printable ASCII is widened (see storeDescription).
func (c *Client) Validate(req collection.CreateRequest) error {
	switch {
	case req.InvoiceID == "":
		return billing.Invalid("invoice_id", "invoice_id is required")
	case req.AttemptID == "":
		return billing.Invalid("attempt_id", "attempt_id is required: it is the Idempotency-Key")
	case len(req.AttemptID) > 255:
		return billing.Invalid("attempt_id", "attempt_id must be at most 255 bytes (Stripe's Idempotency-Key limit), got %d", len(req.AttemptID))
	case req.Amount < MinAmount:
		return billing.Invalid("amount", "amount ¥%d is below Stripe konbini's minimum of ¥%d", req.Amount, MinAmount)
	case req.Amount > MaxAmount:
		return billing.Invalid("amount", "amount ¥%d is above Stripe konbini's maximum of ¥%d", req.Amount, MaxAmount)
	case req.Payer.Name == "":
		return billing.Invalid("payer.name", "payer name is required for a Stripe konbini voucher")
	case req.Payer.Email == "":
		return billing.Invalid("payer.email", "payer e-mail is required for a Stripe konbini voucher")
	}
	d := storeDescription(req.Description)
	if n := utf8.RuneCountInString(d); n > MaxDescription {
		return billing.Invalid("description", "description must be at most %d characters for Stripe konbini, got %d", MaxDescription, n)
	}
	for _, r := range d {
		if !isJISX0208(r) {
			return billing.Invalid("description", "description may only contain JIS X 0208 characters for Stripe konbini (ASCII is sent full-width); %q (%U) is not one", r, r)
		}
	}
	return nil
}

// storeDescription is the product_description Create sends: s with printable
// ASCII and half-width katakana replaced by their full-width forms
// ("INV-1 5月分" → "ＩＮＶ－１　５月分", "ｶﾞ" → "ガ"), which are JIS X 0208
// characters, so that invoice numbers and Latin plan names pass. NFC then
// composes the voiced marks that widening leaves separate. Other characters
// are sent as they are.
func storeDescription(s string) string {
	return norm.NFC.String(width.Widen.String(s))
}

// jisAliases maps the JIS-standard Unicode mapping of six JIS X 0208
// characters to the Microsoft mapping that golang.org/x/text's tables use,
// so that either spelling passes (e.g. WAVE DASH 〜 and FULLWIDTH TILDE ～ are
// both row 1 cell 33).
var jisAliases = map[rune]rune{
	'\u301C': '\uFF5E', // 〜
	'\u2212': '\uFF0D', // −
	'\u2016': '\u2225', // ‖
	'\u00A2': '\uFFE0', // ¢
	'\u00A3': '\uFFE1', // £
	'\u00AC': '\uFFE2', // ¬
}

// isJISX0208 reports whether r is a character of JIS X 0208 (the 6,879
// characters of rows 1–8 and 16–84).
//
// golang.org/x/text/encoding/japanese has no JIS X 0208 encoder of its own:
// its EUC-JP encoder also covers ASCII, half-width katakana (JIS X 0201),
// JIS X 0212 (three bytes), NEC's special characters in row 13 (①, ㈱) and
// the NEC-selected IBM extensions in rows 89–92 (髙, 﨑). So r is encoded to
// EUC-JP and accepted only if that gives two bytes in 0xA1–0xFE whose row
// (first byte − 0xA0) is 1–8 or 16–84.
func isJISX0208(r rune) bool {
	if a, ok := jisAliases[r]; ok {
		r = a
	}
	b, err := japanese.EUCJP.NewEncoder().Bytes([]byte(string(r)))
	if err != nil || len(b) != 2 || b[0] < 0xA1 || b[1] < 0xA1 || b[1] == 0xFF {
		return false
	}
	row := b[0] - 0xA0
	return row <= 8 || (16 <= row && row <= 84)
}
