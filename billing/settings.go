package billing

import (
	"strings"
	"time"
)

// Issuer is the seller printed on every invoice.
type Issuer struct {
	Name               string
	Address            string
	RegistrationNumber string // T + 13 digits
}

// Settings are the operator's billing rules, shared by the services.
type Settings struct {
	// Location is the time zone in which periods, due dates and document
	// dates are computed (Asia/Tokyo by default).
	Location *time.Location
	// Rounding rounds each tax rate's consumption tax once per invoice.
	Rounding Rounding
	// NumberPrefix starts every invoice number; "{year}" is replaced by the
	// year of finalization, and each distinct prefix is its own gapless series.
	NumberPrefix string
	// CreditNotePrefix starts every credit note number, like NumberPrefix
	// ("CN-{year}-" if empty); see CreditNoteSeries.
	CreditNotePrefix string
	// DaysUntilDue is the default for subscriptions and one-off invoices.
	DaysUntilDue int
	// Issuer is copied onto each invoice when it is finalized.
	Issuer Issuer
	// TrialInvoice issues a ¥0 invoice when a subscription's trial starts,
	// as Stripe does; by default a trial issues no invoice at all.
	TrialInvoice bool
}

// DefaultSettings returns the settings billingd runs with when none are given.
func DefaultSettings() Settings {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		loc = time.FixedZone("JST", 9*3600)
	}
	return Settings{Location: loc, Rounding: RoundDown, NumberPrefix: "INV-{year}-", DaysUntilDue: 30}
}

// InvoiceSeries returns the number series for an invoice finalized at t.
func (s Settings) InvoiceSeries(t time.Time) string {
	return strings.ReplaceAll(s.NumberPrefix, "{year}", t.In(s.Location).Format("2006"))
}

// DueDate returns the end of the day (23:59:59 local) days after t.
func (s Settings) DueDate(t time.Time, days int) time.Time {
	y, m, d := t.In(s.Location).Date()
	return time.Date(y, m, d+days, 23, 59, 59, 0, s.Location)
}
