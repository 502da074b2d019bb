package billing

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// NormalizePhone applies NFKC and removes white space and hyphen-like
// characters (dashes, the minus sign and the katakana prolonged sound mark ー
// often typed in Japanese phone numbers): "０９０ー１２３４－５６７８" becomes
// "09012345678".
func NormalizePhone(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) || r == '−' || r == 'ー' {
			return -1
		}
		return r
	}, norm.NFKC.String(s))
}

// The digits of a Japanese phone number, as Konbini providers take it.
const (
	MinPhoneDigits = 10
	MaxPhoneDigits = 11
)

// ValidPhone reports whether s is a Japanese phone number: MinPhoneDigits
// to MaxPhoneDigits digits once normalized.
func ValidPhone(s string) bool {
	d := NormalizePhone(s)
	if len(d) < MinPhoneDigits || len(d) > MaxPhoneDigits {
		return false
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
