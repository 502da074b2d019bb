package opn

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"billingd/collection"
)

// The seed's pending charge, verbatim from Opn's documentation.
func seedCharge(t *testing.T) charge {
	t.Helper()
	data, err := os.ReadFile("testdata/seed_charge.json")
	if err != nil {
		t.Fatal(err)
	}
	var ch charge
	if err := json.Unmarshal(data, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestChargeFromSeed(t *testing.T) {
	t.Run("Pending", func(t *testing.T) {
		ch := seedCharge(t)
		got := ch.toCharge()
		if got.ID != "chrg_test_5xsjw8t67xqke49yg44" || got.Status != collection.StatusPending || got.Amount != 300 {
			t.Errorf("got %+v", got)
		}
		if len(got.PaymentCodes) != 1 || got.PaymentCodes[0].PaymentCode != "709590" {
			t.Errorf("payment codes = %+v", got.PaymentCodes)
		}
		if got.InstructionsURL != "https://pay.omise.co/offlines/econtext/instructions/oflp_test_5xsjw8t8y9jw9si8652" {
			t.Errorf("instructions = %q", got.InstructionsURL)
		}
		if want := time.Date(2023, 12, 16, 15, 4, 47, 0, time.UTC); !got.ExpiresAt.Equal(want) {
			t.Errorf("expires = %v", got.ExpiresAt)
		}
		if got.Fee != nil || got.FeeVAT != nil || got.Net != nil || got.PaidAt != nil {
			t.Errorf("fees or paid_at reported on a pending charge: %+v", got)
		}
	})
	t.Run("SuccessfulReportsFees", func(t *testing.T) {
		ch := seedCharge(t)
		paid := time.Date(2023, 11, 17, 1, 0, 0, 0, time.UTC)
		ch.Status, ch.PaidAt = "successful", &paid
		got := ch.toCharge()
		if got.Status != collection.StatusSuccessful || got.Fee == nil || *got.Fee != 152 || *got.FeeVAT != 15 || *got.Net != 133 || !got.PaidAt.Equal(paid) {
			t.Errorf("got %+v", got)
		}
	})
}

func TestChargeStatus(t *testing.T) {
	for _, tc := range []struct{ name, status, failure, want string }{
		{"Pending", "pending", "", collection.StatusPending},
		{"Successful", "successful", "", collection.StatusSuccessful},
		{"Failed", "failed", "payment_cancelled", collection.StatusFailed},
		{"FailedTimeoutIsExpired", "failed", "timeout", collection.StatusExpired},
		{"Expired", "expired", "timeout", collection.StatusExpired},
		{"ReversedIsFailed", "reversed", "", collection.StatusFailed},
		{"UnknownIsPending", "something_new", "", collection.StatusPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := charge{Status: tc.status, FailureCode: tc.failure}
			if got := ch.toCharge().Status; got != tc.want {
				t.Errorf("status %s/%s → %s, want %s", tc.status, tc.failure, got, tc.want)
			}
		})
	}
}
