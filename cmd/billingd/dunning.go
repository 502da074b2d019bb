package main

import (
	"fmt"
	"strconv"
	"strings"

	"billingd/billing"
)

// Dunning returns the operator's dunning policy: the reminder schedule
// (BILLING_DUNNING_REMINDER_DAYS, else BILLING_REMINDER_DAYS alone), the
// reissues (BILLING_VOUCHER_REISSUES, BILLING_VOUCHER_REISSUE_DAYS) and what
// follows the last voucher (BILLING_DUNNING_INVOICE_OUTCOME,
// BILLING_DUNNING_SUBSCRIPTION_OUTCOME). The configuration is validated.
func (c Config) Dunning() billing.DunningPolicy {
	days, _ := reminderDays(c.DunningReminderDays)
	if days == nil {
		days = []int{c.ReminderDays}
	}
	reissues, validity := c.VoucherReissues, c.ReissueDays
	return billing.DunningPolicy{ReminderDays: days, VoucherReissues: &reissues, VoucherReissueDays: &validity,
		InvoiceOutcome: c.DunningInvoice, SubscriptionOutcome: c.DunningSubscription}
}

// reminderDays parses a reminder schedule: comma-separated whole days, or
// "none" (an empty, non-nil schedule). An empty string gives nil.
func reminderDays(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return nil, nil
	case "none":
		return []int{}, nil
	}
	var days []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number of days", f)
		}
		days = append(days, n)
	}
	return days, nil
}

func (c Config) validateDunning() error {
	if _, err := reminderDays(c.DunningReminderDays); err != nil {
		return fmt.Errorf("BILLING_DUNNING_REMINDER_DAYS must list days before the deadline like \"7,3,1\", or be \"none\": %w", err)
	}
	if err := c.Dunning().Validate(""); err != nil {
		name := map[string]string{"reminder_days": "BILLING_DUNNING_REMINDER_DAYS", "invoice_outcome": "BILLING_DUNNING_INVOICE_OUTCOME",
			"subscription_outcome": "BILLING_DUNNING_SUBSCRIPTION_OUTCOME"}[billing.ErrorParam(err)]
		return fmt.Errorf("%s: %s", name, billing.ErrorMessage(err))
	}
	switch {
	case c.CreditNotePrefix == "" || len(c.CreditNotePrefix) > 32:
		return fmt.Errorf("BILLING_CREDIT_NOTE_PREFIX must be 1–32 characters, got %q", c.CreditNotePrefix)
	case c.CreditNotePrefix == c.InvoicePrefix:
		return fmt.Errorf("BILLING_CREDIT_NOTE_PREFIX must differ from BILLING_INVOICE_PREFIX (%q): each is its own gapless series", c.InvoicePrefix)
	}
	return nil
}
