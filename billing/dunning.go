package billing

import (
	"encoding/json"
	"slices"
	"time"
)

// SubscriptionUnpaid is the status of a subscription whose invoice went
// unpaid after its last voucher, when the dunning policy says so: it is no
// longer billed until the overdue invoice is paid, which makes it active
// again.
const SubscriptionUnpaid SubscriptionStatus = "unpaid"

// What happens to an invoice after its last voucher expires unpaid.
const (
	DunningInvoiceOpen          = "open"          // it stays open: it can still be paid or be credited
	DunningInvoiceUncollectible = "uncollectible" // it is marked uncollectible (written off)
)

// What happens to the invoice's subscription after its last voucher expires
// unpaid.
const (
	DunningSubscriptionPastDue  = "past_due" // billing goes on; active again once paid
	DunningSubscriptionUnpaid   = "unpaid"   // billing stops until the invoice is paid
	DunningSubscriptionCanceled = "canceled" // the subscription ends
)

// Defaults of a dunning policy, billingd's behaviour before it had one.
const (
	DefaultVoucherReissues    = 2
	DefaultVoucherReissueDays = 7
	DefaultReminderDays       = 3
)

// maxReminders caps a reminder schedule.
const maxReminders = 5

// DunningPolicy is how billingd chases an invoice that is not paid: the
// reminders before each voucher's deadline, how many new vouchers follow an
// expired one, and what becomes of the invoice and its subscription after
// the last. The operator's settings are one policy; a subscription may
// override any field of it (its dunning field): nil and "" fields inherit.
type DunningPolicy struct {
	// ReminderDays lists how many days before a voucher's deadline each
	// reminder goes out, e.g. [7, 3, 1]. Nil inherits; empty sends none.
	ReminderDays []int `json:"reminder_days"`
	// VoucherReissues is how many new vouchers an invoice gets after one
	// expires unpaid (0–10); VoucherReissueDays how long each is valid (1–30).
	VoucherReissues    *int `json:"voucher_reissues"`
	VoucherReissueDays *int `json:"voucher_reissue_days"`
	// InvoiceOutcome is DunningInvoiceOpen or DunningInvoiceUncollectible.
	InvoiceOutcome string `json:"invoice_outcome"`
	// SubscriptionOutcome is one of the DunningSubscription constants.
	SubscriptionOutcome string `json:"subscription_outcome"`
}

// MarshalJSON shows only the fields that are set, so an override reads as
// what it overrides.
func (p DunningPolicy) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if p.ReminderDays != nil {
		m["reminder_days"] = p.ReminderDays
	}
	if p.VoucherReissues != nil {
		m["voucher_reissues"] = *p.VoucherReissues
	}
	if p.VoucherReissueDays != nil {
		m["voucher_reissue_days"] = *p.VoucherReissueDays
	}
	if p.InvoiceOutcome != "" {
		m["invoice_outcome"] = p.InvoiceOutcome
	}
	if p.SubscriptionOutcome != "" {
		m["subscription_outcome"] = p.SubscriptionOutcome
	}
	return json.Marshal(m)
}

// Validate checks the fields that are set; param prefixes the field names
// in errors (e.g. "dunning.").
func (p DunningPolicy) Validate(param string) error {
	if len(p.ReminderDays) > maxReminders {
		return Invalid(param+"reminder_days", "%sreminder_days lists at most %d reminders", param, maxReminders)
	}
	for _, d := range p.ReminderDays {
		if d < 1 || d > 30 {
			return Invalid(param+"reminder_days", "%sreminder_days must be whole days between 1 and 30, got %d", param, d)
		}
	}
	if p.VoucherReissues != nil && (*p.VoucherReissues < 0 || *p.VoucherReissues > 10) {
		return Invalid(param+"voucher_reissues", "%svoucher_reissues must be between 0 and 10, got %d", param, *p.VoucherReissues)
	}
	if p.VoucherReissueDays != nil && (*p.VoucherReissueDays < 1 || *p.VoucherReissueDays > 30) {
		return Invalid(param+"voucher_reissue_days", "%svoucher_reissue_days must be between 1 and 30, got %d", param, *p.VoucherReissueDays)
	}
	switch p.InvoiceOutcome {
	case "", DunningInvoiceOpen, DunningInvoiceUncollectible:
	default:
		return Invalid(param+"invoice_outcome", "%sinvoice_outcome must be open or uncollectible, got %q", param, p.InvoiceOutcome)
	}
	switch p.SubscriptionOutcome {
	case "", DunningSubscriptionPastDue, DunningSubscriptionUnpaid, DunningSubscriptionCanceled:
	default:
		return Invalid(param+"subscription_outcome", "%ssubscription_outcome must be past_due, unpaid or canceled, got %q", param, p.SubscriptionOutcome)
	}
	return nil
}

// IsZero reports whether p overrides nothing.
func (p DunningPolicy) IsZero() bool {
	return p.ReminderDays == nil && p.VoucherReissues == nil && p.VoucherReissueDays == nil && p.InvoiceOutcome == "" && p.SubscriptionOutcome == ""
}

// Merge returns p with the fields set in o (if any) in place of p's.
func (p DunningPolicy) Merge(o *DunningPolicy) DunningPolicy {
	if o == nil {
		return p
	}
	if o.ReminderDays != nil {
		p.ReminderDays = o.ReminderDays
	}
	if o.VoucherReissues != nil {
		p.VoucherReissues = o.VoucherReissues
	}
	if o.VoucherReissueDays != nil {
		p.VoucherReissueDays = o.VoucherReissueDays
	}
	if o.InvoiceOutcome != "" {
		p.InvoiceOutcome = o.InvoiceOutcome
	}
	if o.SubscriptionOutcome != "" {
		p.SubscriptionOutcome = o.SubscriptionOutcome
	}
	return p
}

// Reissues is the number of new vouchers after an expired one.
func (p DunningPolicy) Reissues() int {
	if p.VoucherReissues == nil {
		return DefaultVoucherReissues
	}
	return *p.VoucherReissues
}

// ReissueDays is how long a reissued voucher is valid, in days.
func (p DunningPolicy) ReissueDays() int {
	if p.VoucherReissueDays == nil || *p.VoucherReissueDays < 1 {
		return DefaultVoucherReissueDays
	}
	return *p.VoucherReissueDays
}

// Invoice is what becomes of the invoice after the last voucher.
func (p DunningPolicy) Invoice() string {
	if p.InvoiceOutcome == "" {
		return DunningInvoiceOpen
	}
	return p.InvoiceOutcome
}

// Subscription is what becomes of the subscription after the last voucher.
func (p DunningPolicy) Subscription() string {
	if p.SubscriptionOutcome == "" {
		return DunningSubscriptionPastDue
	}
	return p.SubscriptionOutcome
}

// Reminders returns the reminder schedule, earliest reminder (most days
// before the deadline) first, without duplicates.
func (p DunningPolicy) Reminders() []int {
	if p.ReminderDays == nil {
		return []int{DefaultReminderDays}
	}
	ds := slices.Clone(p.ReminderDays)
	slices.Sort(ds)
	ds = slices.Compact(ds)
	slices.Reverse(ds)
	return ds
}

// reminderAt is the instant of the reminder days before expires.
func reminderAt(expires time.Time, days int) time.Time {
	return expires.Add(-time.Duration(days) * 24 * time.Hour)
}

// NextReminder returns the first reminder instant strictly after after for
// a voucher that expires at expires; ok is false if no reminder is left.
// A voucher issued inside a reminder's window skips that reminder: its
// invoice e-mail is fresh.
func (p DunningPolicy) NextReminder(expires, after time.Time) (time.Time, bool) {
	for _, d := range p.Reminders() { // most days first: earliest instant first
		if at := reminderAt(expires, d); at.After(after) {
			return at, true
		}
	}
	return time.Time{}, false
}

// DueReminder returns the reminder of a voucher expiring at expires whose
// instant is the latest in [from, now], as days before the deadline; ok is
// false if none is. Reminders missed while billingd was down are not sent
// late one by one: only the latest goes out.
func (p DunningPolicy) DueReminder(expires, from, now time.Time) (days int, ok bool) {
	if !expires.After(now) {
		return 0, false
	}
	for _, d := range p.Reminders() {
		at := reminderAt(expires, d)
		if !at.Before(from) && !at.After(now) {
			days, ok = d, true // later entries are later instants
		}
	}
	return days, ok
}
