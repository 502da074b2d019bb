package opn

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"billingd/billing"
	"billingd/collection"
)

// Payer field limits of an econtext source.
const (
	MaxNameRunes  = 10
	MinEmailRunes = 6
	MaxEmailRunes = 50
)

// Normalize returns req with the payer's details as Create sends them: the
// name by NormalizeName, the phone number by billing.NormalizePhone and the e-mail
// address with surrounding white space trimmed.
func Normalize(req collection.CreateRequest) collection.CreateRequest {
	req.Payer.Name = NormalizeName(req.Payer.Name)
	req.Payer.Phone = billing.NormalizePhone(req.Payer.Phone)
	req.Payer.Email = strings.TrimSpace(req.Payer.Email)
	return req
}

// NormalizeName applies NFKC (half-width ｶﾞ becomes one ガ, full-width Ａ
// becomes A) and removes all white space, including the ideographic space
// between family and given names, since Opn allows only letters in a name.
func NormalizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, norm.NFKC.String(s))
}

// Validate checks req against Opn's econtext rules after Normalize: amount
// MinAmount–MaxAmount; name 1–10 runes, each an ASCII letter or digit,
// hiragana, katakana (with ー) or kanji; e-mail 6–50 runes; phone 10–11
// digits; invoice and attempt ids present. Errors are EINVALID
// *billing.Error naming the field.
func (c *Client) Validate(req collection.CreateRequest) error {
	req = Normalize(req)
	switch {
	case req.InvoiceID == "":
		return billing.Invalid("invoice_id", "invoice_id is required")
	case req.AttemptID == "":
		return billing.Invalid("attempt_id", "attempt_id is required")
	case req.Amount < MinAmount:
		return billing.Invalid("amount", "amount must be at least ¥%d for Konbini at Opn, got ¥%d", MinAmount, req.Amount)
	case req.Amount > MaxAmount:
		return billing.Invalid("amount", "amount must be at most ¥%d for Konbini at Opn, got ¥%d", MaxAmount, req.Amount)
	}
	name := req.Payer.Name
	if name == "" {
		return billing.Invalid("payer.name", "payer.name is required")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameRunes {
		return billing.Invalid("payer.name", "payer.name must be at most %d characters after NFKC normalisation and removal of spaces, got %d", MaxNameRunes, n)
	}
	for _, r := range name {
		if !nameRune(r) {
			return billing.Invalid("payer.name", "payer.name may contain only letters, digits, hiragana, katakana and kanji, got %q", r)
		}
	}
	if n := utf8.RuneCountInString(req.Payer.Email); n < MinEmailRunes || n > MaxEmailRunes {
		return billing.Invalid("payer.email", "payer.email must be %d to %d characters, got %d", MinEmailRunes, MaxEmailRunes, n)
	}
	if !billing.ValidPhone(req.Payer.Phone) {
		return billing.Invalid("payer.phone", "payer.phone must be %d or %d digits (hyphens and spaces are ignored), got %q",
			billing.MinPhoneDigits, billing.MaxPhoneDigits, req.Payer.Phone)
	}
	return nil
}

// nameRune reports whether r may appear in an econtext payer name.
func nameRune(r rune) bool {
	return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) ||
		r == 'ー' || unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han)
}
