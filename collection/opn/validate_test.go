package opn

import (
	"strings"
	"testing"

	"billingd/billing"
	"billingd/collection"
)

func validRequest() collection.CreateRequest {
	return collection.CreateRequest{
		InvoiceID: "in_1", AttemptID: "att_1", Amount: 300,
		Payer: collection.Payer{Name: "ヤマダタロウ", Email: "taro.yamada@example.com", Phone: "01234567891"},
	}
}

func TestValidate(t *testing.T) {
	c, err := New(Config{SecretKey: "skey_test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*collection.CreateRequest)
		param string // "" when valid
	}{
		{"OK", func(r *collection.CreateRequest) {}, ""},
		{"OKAmountMinimum", func(r *collection.CreateRequest) { r.Amount = 200 }, ""},
		{"OKAmountMaximum", func(r *collection.CreateRequest) { r.Amount = 49_999 }, ""},
		{"ErrAmountBelowMinimum", func(r *collection.CreateRequest) { r.Amount = 199 }, "amount"},
		{"ErrAmountAboveMaximum", func(r *collection.CreateRequest) { r.Amount = 50_000 }, "amount"},
		{"ErrMissingInvoiceID", func(r *collection.CreateRequest) { r.InvoiceID = "" }, "invoice_id"},
		{"ErrMissingAttemptID", func(r *collection.CreateRequest) { r.AttemptID = "" }, "attempt_id"},
		{"OKNameTenRunes", func(r *collection.CreateRequest) { r.Payer.Name = "やまだたろうやまだた" }, ""},
		{"OKNameKanjiWithSpaceRemoved", func(r *collection.CreateRequest) { r.Payer.Name = "山田　太郎" }, ""},
		{"OKNameFullWidthLatin", func(r *collection.CreateRequest) { r.Payer.Name = "Ｔａｒｏ１" }, ""},
		// Six half-width ｶﾞ are twelve runes, six after NFKC.
		{"OKHalfWidthVoicedKanaCountsOnceAfterNFKC", func(r *collection.CreateRequest) { r.Payer.Name = "ｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞ" }, ""},
		{"ErrNameTooLongAfterNFKC", func(r *collection.CreateRequest) {
			r.Payer.Name = "ｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞｶﾞ"
		}, "payer.name"},
		{"ErrNameElevenRunes", func(r *collection.CreateRequest) { r.Payer.Name = "やまだたろうやまだたろ" }, "payer.name"},
		{"ErrNameEmpty", func(r *collection.CreateRequest) { r.Payer.Name = " 　" }, "payer.name"},
		{"ErrNameEmoji", func(r *collection.CreateRequest) { r.Payer.Name = "たろう😀" }, "payer.name"},
		{"ErrNamePunctuation", func(r *collection.CreateRequest) { r.Payer.Name = "ヤマダ・タロウ" }, "payer.name"},
		{"ErrNameAccentedLatin", func(r *collection.CreateRequest) { r.Payer.Name = "José" }, "payer.name"},
		{"OKPhoneWithHyphens", func(r *collection.CreateRequest) { r.Payer.Phone = "090-1234-5678" }, ""},
		{"OKPhoneFullWidthWithProlongedSoundMark", func(r *collection.CreateRequest) { r.Payer.Phone = "０３ー１２３４ー５６７８" }, ""},
		{"ErrPhoneTooShort", func(r *collection.CreateRequest) { r.Payer.Phone = "03-1234-567" }, "payer.phone"},
		{"ErrPhoneTooLong", func(r *collection.CreateRequest) { r.Payer.Phone = "090-1234-56789" }, "payer.phone"},
		{"ErrPhoneInternationalPrefix", func(r *collection.CreateRequest) { r.Payer.Phone = "+8190123456" }, "payer.phone"},
		{"OKEmailSixChars", func(r *collection.CreateRequest) { r.Payer.Email = "a@b.jp" }, ""},
		{"ErrEmailTooShort", func(r *collection.CreateRequest) { r.Payer.Email = "a@b.j" }, "payer.email"},
		{"OKEmailFiftyChars", func(r *collection.CreateRequest) { r.Payer.Email = strings.Repeat("a", 42) + "@example" }, ""},
		{"ErrEmailTooLong", func(r *collection.CreateRequest) { r.Payer.Email = strings.Repeat("a", 43) + "@example" }, "payer.email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := validRequest()
			tc.edit(&req)
			err := c.Validate(req)
			if tc.param == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != tc.param {
				t.Fatalf("Validate = %v, want EINVALID on %s", err, tc.param)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	got := Normalize(collection.CreateRequest{Payer: collection.Payer{Name: "ﾔﾏﾀﾞ ﾀﾛｳ", Phone: "０９０－１２３４－５６７８", Email: " a@b.jp "}})
	if got.Payer.Name != "ヤマダタロウ" || got.Payer.Phone != "09012345678" || got.Payer.Email != "a@b.jp" {
		t.Errorf("Normalize = %+v", got.Payer)
	}
}
