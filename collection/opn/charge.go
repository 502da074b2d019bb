package opn

import (
	"time"

	"billingd/billing"
	"billingd/collection"
)

// charge is the part of Opn's charge object that billingd reads.
type charge struct {
	ID             string         `json:"id"`
	Amount         int64          `json:"amount"`
	Fee            *int64         `json:"fee"`
	FeeVAT         *int64         `json:"fee_vat"`
	Net            *int64         `json:"net"`
	Status         string         `json:"status"`
	PaidAt         *time.Time     `json:"paid_at"`
	ExpiresAt      *time.Time     `json:"expires_at"`
	AuthorizeURI   string         `json:"authorize_uri"`
	FailureCode    string         `json:"failure_code"`
	FailureMessage string         `json:"failure_message"`
	Metadata       map[string]any `json:"metadata"`
	Source         *struct {
		References *struct {
			PaymentCode string     `json:"payment_code"`
			ExpiresAt   *time.Time `json:"expires_at"`
		} `json:"references"`
	} `json:"source"`
}

// toCharge maps an Opn charge to billingd's view:
//   - status successful, failed and expired map to themselves, reversed to
//     failed; failed with failure_code timeout (the payer did not pay before
//     expiry) to expired; anything else (a status added later) to pending, so
//     billingd keeps waiting rather than failing on every fetch;
//   - fee, fee_vat, net and paid_at only once the charge is paid (Opn already
//     reports the fees a pending charge would incur).
func (ch *charge) toCharge() *collection.Charge {
	out := &collection.Charge{
		ID:              ch.ID,
		Amount:          ch.Amount,
		InstructionsURL: ch.AuthorizeURI,
		FailureCode:     ch.FailureCode,
		FailureMessage:  ch.FailureMessage,
		Status:          collection.StatusPending,
	}
	out.InvoiceID, _ = ch.Metadata["invoice_id"].(string)
	out.AttemptID, _ = ch.Metadata["attempt_id"].(string)
	switch ch.Status {
	case "successful":
		out.Status = collection.StatusSuccessful
	case "failed", "reversed":
		out.Status = collection.StatusFailed
		if ch.FailureCode == "timeout" {
			out.Status = collection.StatusExpired
		}
	case "expired":
		out.Status = collection.StatusExpired
	}
	if out.Status == collection.StatusSuccessful {
		out.Fee, out.FeeVAT, out.Net, out.PaidAt = ch.Fee, ch.FeeVAT, ch.Net, ch.PaidAt
	}
	if ch.ExpiresAt != nil {
		out.ExpiresAt = *ch.ExpiresAt
	}
	if ch.Source != nil && ch.Source.References != nil {
		ref := ch.Source.References
		if ref.PaymentCode != "" {
			out.PaymentCodes = []billing.PaymentCode{{PaymentCode: ref.PaymentCode}}
		}
		if out.ExpiresAt.IsZero() && ref.ExpiresAt != nil {
			out.ExpiresAt = *ref.ExpiresAt
		}
	}
	return out
}
