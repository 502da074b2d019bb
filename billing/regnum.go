package billing

// ValidateRegistrationNumber checks a qualified invoice issuer registration
// number (適格請求書発行事業者登録番号): "T" followed by 13 digits. When
// corporate is true the first digit must also be the check digit of the
// corporate number (法人番号); sole traders' numbers have no documented check
// digit. param names the field in the error.
func ValidateRegistrationNumber(param, s string, corporate bool) error {
	if len(s) != 14 || s[0] != 'T' {
		return Invalid(param, "%s must be 'T' followed by 13 digits, got %q", param, s)
	}
	for i := 1; i < 14; i++ {
		if s[i] < '0' || s[i] > '9' {
			return Invalid(param, "%s must be 'T' followed by 13 digits, got %q", param, s)
		}
	}
	if corporate && !corporateCheckDigitOK(s[1:]) {
		return Invalid(param, "%s %q fails the corporate number check digit", param, s)
	}
	return nil
}

// corporateCheckDigitOK checks the 13-digit corporate number d: its first digit
// is 9 − (Σ Pn·Qn mod 9) where Pn is the n-th of the other 12 digits counted
// from the right and Qn is 1 for odd n and 2 for even n.
func corporateCheckDigitOK(d string) bool {
	sum := 0
	for n := 1; n <= 12; n++ {
		p := int(d[13-n] - '0')
		q := 1
		if n%2 == 0 {
			q = 2
		}
		sum += p * q
	}
	return int(d[0]-'0') == 9-sum%9
}
