package billing

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestDunningPolicyReminders(t *testing.T) {
	exp := time.Date(2027, 1, 15, 14, 59, 59, 0, time.UTC) // 23:59:59 JST
	day := 24 * time.Hour
	p := DunningPolicy{ReminderDays: []int{1, 7, 3, 3}}
	if got := fmt.Sprint(p.Reminders()); got != "[7 3 1]" {
		t.Fatalf("Reminders() = %s, want [7 3 1] (earliest first, no duplicates)", got)
	}
	if got := fmt.Sprint(DunningPolicy{}.Reminders()); got != "[3]" {
		t.Errorf("default schedule %s, want [3]", got)
	}
	if got := (DunningPolicy{ReminderDays: []int{}}).Reminders(); len(got) != 0 {
		t.Errorf("empty schedule %v", got)
	}
	t.Run("NextReminder", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			after time.Time
			want  time.Time
			ok    bool
		}{
			{"IssuedLongBefore", exp.Add(-14 * day), exp.Add(-7 * day), true},
			{"IssuedInsideTheFirstWindow", exp.Add(-5 * day), exp.Add(-3 * day), true},
			{"AtAReminderTheNextOne", exp.Add(-3 * day), exp.Add(-1 * day), true},
			{"AfterTheLast", exp.Add(-12 * time.Hour), time.Time{}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, ok := p.NextReminder(exp, tc.after)
				if ok != tc.ok || !got.Equal(tc.want) {
					t.Errorf("NextReminder(after %v) = %v, %v; want %v, %v", tc.after, got, ok, tc.want, tc.ok)
				}
			})
		}
	})
	t.Run("DueReminder", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			from, now time.Time
			days      int
			ok        bool
		}{
			{"AtItsInstant", exp.Add(-7 * day), exp.Add(-7 * day), 7, true},
			{"NotYet", exp.Add(-7 * day), exp.Add(-7*day - time.Second), 0, false},
			// Down for a week: only the latest reminder goes out.
			{"CatchUpSendsTheLatest", exp.Add(-7 * day), exp.Add(-20 * time.Hour), 1, true},
			{"NoneAfterTheDeadline", exp.Add(-7 * day), exp.Add(time.Second), 0, false},
			{"NoneBeforeFrom", exp.Add(-2 * day), exp.Add(-36 * time.Hour), 0, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				days, ok := p.DueReminder(exp, tc.from, tc.now)
				if days != tc.days || ok != tc.ok {
					t.Errorf("DueReminder = %d, %v; want %d, %v", days, ok, tc.days, tc.ok)
				}
			})
		}
	})
}

func TestDunningPolicyMergeAndDefaults(t *testing.T) {
	ops := DunningPolicy{ReminderDays: []int{7, 3}, VoucherReissues: ptr(2), VoucherReissueDays: ptr(7), InvoiceOutcome: DunningInvoiceOpen}
	sub := &DunningPolicy{VoucherReissues: ptr(0), SubscriptionOutcome: DunningSubscriptionCanceled}
	p := ops.Merge(sub)
	if fmt.Sprint(p.Reminders()) != "[7 3]" || p.Reissues() != 0 || p.ReissueDays() != 7 || p.Invoice() != "open" || p.Subscription() != "canceled" {
		t.Errorf("merged %+v", p)
	}
	if ops.Merge(nil).Subscription() != DunningSubscriptionPastDue {
		t.Error("default subscription outcome is not past_due")
	}
	if !(DunningPolicy{}).IsZero() || sub.IsZero() || (DunningPolicy{ReminderDays: []int{}}).IsZero() {
		t.Error("IsZero")
	}
	b, _ := json.Marshal(sub)
	if string(b) != `{"subscription_outcome":"canceled","voucher_reissues":0}` {
		t.Errorf("JSON %s shows unset fields", b)
	}
	var back DunningPolicy
	if err := json.Unmarshal([]byte(`{"reminder_days":[],"voucher_reissues":1}`), &back); err != nil || back.ReminderDays == nil || *back.VoucherReissues != 1 {
		t.Errorf("decoded %+v, %v", back, err)
	}
}

func TestDunningPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     DunningPolicy
		param string
	}{
		{"OK", DunningPolicy{ReminderDays: []int{30, 1}, VoucherReissues: ptr(10), VoucherReissueDays: ptr(30), InvoiceOutcome: "uncollectible", SubscriptionOutcome: "unpaid"}, ""},
		{"ErrReminderDay", DunningPolicy{ReminderDays: []int{0}}, "dunning.reminder_days"},
		{"ErrTooManyReminders", DunningPolicy{ReminderDays: []int{1, 2, 3, 4, 5, 6}}, "dunning.reminder_days"},
		{"ErrReissues", DunningPolicy{VoucherReissues: ptr(11)}, "dunning.voucher_reissues"},
		{"ErrReissueDays", DunningPolicy{VoucherReissueDays: ptr(0)}, "dunning.voucher_reissue_days"},
		{"ErrInvoiceOutcome", DunningPolicy{InvoiceOutcome: "void"}, "dunning.invoice_outcome"},
		{"ErrSubscriptionOutcome", DunningPolicy{SubscriptionOutcome: "paused"}, "dunning.subscription_outcome"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate("dunning.")
			if ErrorParam(err) != tc.param || (tc.param == "") != (err == nil) {
				t.Errorf("Validate: %v, want param %q", err, tc.param)
			}
		})
	}
}

func TestCreditNoteSeries(t *testing.T) {
	s := DefaultSettings()
	at := time.Date(2027, 12, 31, 15, 30, 0, 0, time.UTC) // 2028-01-01 00:30 JST
	if got := s.CreditNoteSeries(at); got != "CN-2028-" {
		t.Errorf("default series %q, want CN-2028- (the year in Tokyo)", got)
	}
	s.CreditNotePrefix = "RF{year}/"
	if got := s.CreditNoteSeries(at); got != "RF2028/" {
		t.Errorf("series %q", got)
	}
}
