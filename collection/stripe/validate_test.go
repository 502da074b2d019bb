package stripekonbini_test

import (
	"strings"
	"testing"

	"billingd/billing"
	"billingd/collection"
	stripekonbini "billingd/collection/stripe"
)

func TestValidate(t *testing.T) {
	c, err := stripekonbini.New(stripekonbini.Config{APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*collection.CreateRequest)
		param string // "" for valid
	}{
		{"OK", func(r *collection.CreateRequest) {}, ""},
		{"OKMinimumAmount", func(r *collection.CreateRequest) { r.Amount = 120 }, ""},
		{"OKMaximumAmount", func(r *collection.CreateRequest) { r.Amount = 300_000 }, ""},
		{"OKNoDescription", func(r *collection.CreateRequest) { r.Description = "" }, ""},
		{"OKDescription22Characters", func(r *collection.CreateRequest) { r.Description = strings.Repeat("漢", 22) }, ""},
		{"OKDescriptionASCIIWidened", func(r *collection.CreateRequest) { r.Description = "Basic plan 2024-05" }, ""},
		{"OKDescriptionHalfwidthKatakanaWidened", func(r *collection.CreateRequest) { r.Description = "ｺﾞﾘﾖｳﾘｮｳｷﾝ" }, ""},
		{"OKDescriptionWaveDashEitherMapping", func(r *collection.CreateRequest) { r.Description = "5月〜6月分～" }, ""},
		{"OKDescriptionRow84Kanji", func(r *collection.CreateRequest) { r.Description = "堯槇遙瑤凜熙" }, ""},
		{"ErrInvoiceIDMissing", func(r *collection.CreateRequest) { r.InvoiceID = "" }, "invoice_id"},
		{"ErrAttemptIDMissing", func(r *collection.CreateRequest) { r.AttemptID = "" }, "attempt_id"},
		{"ErrAttemptIDOver255Bytes", func(r *collection.CreateRequest) { r.AttemptID = strings.Repeat("a", 256) }, "attempt_id"},
		{"ErrAmountBelowMinimum", func(r *collection.CreateRequest) { r.Amount = 119 }, "amount"},
		{"ErrAmountAboveMaximum", func(r *collection.CreateRequest) { r.Amount = 300_001 }, "amount"},
		{"ErrNameMissing", func(r *collection.CreateRequest) { r.Payer.Name = "" }, "payer.name"},
		{"ErrEmailMissing", func(r *collection.CreateRequest) { r.Payer.Email = "" }, "payer.email"},
		{"ErrDescription23Characters", func(r *collection.CreateRequest) { r.Description = strings.Repeat("漢", 23) }, "description"},
		{"ErrDescriptionEmoji", func(r *collection.CreateRequest) { r.Description = "ご利用料金🙂" }, "description"},
		{"ErrDescriptionIBMExtensionKanji", func(r *collection.CreateRequest) { r.Description = "髙橋様ご利用分" }, "description"},
		{"ErrDescriptionNECSpecialCharacter", func(r *collection.CreateRequest) { r.Description = "①月分" }, "description"},
		{"ErrDescriptionJISX0212Kanji", func(r *collection.CreateRequest) { r.Description = "丂" }, "description"},
		{"ErrDescriptionASCIIQuoteHasNoJISForm", func(r *collection.CreateRequest) { r.Description = `"Pro" plan` }, "description"},
		{"ErrDescriptionInvalidUTF8", func(r *collection.CreateRequest) { r.Description = "\xff" }, "description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request()
			tc.edit(&req)
			err := c.Validate(req)
			if tc.param == "" {
				if err != nil {
					t.Errorf("Validate = %v", err)
				}
				return
			}
			if billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != tc.param {
				t.Errorf("Validate = %v, want EINVALID on %s", err, tc.param)
			}
		})
	}
}
