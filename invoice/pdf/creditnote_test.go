package pdf

import (
	"bytes"
	"strings"
	"testing"

	"billingd/billing"
)

// creditNoteJA credits part of invoiceJA's lines, at two rates, and lowers
// its amount due.
func creditNoteJA() CreditNoteDoc {
	in := invoiceJA().Invoice
	return CreditNoteDoc{
		CreditNote: &billing.CreditNote{
			Number: "CN-2027-000001", Status: "issued", Reason: billing.ReasonOrderChange, Outcome: billing.OutcomeReduceAmountDue,
			TaxBehavior: billing.TaxExclusive, InvoiceNumber: *in.Number, InvoiceDate: *in.FinalizedAt,
			Lines: []*billing.CreditNoteLine{
				{Description: "追加ユーザー", Quantity: 1, UnitAmount: 1200, Amount: 1200, TaxRate: billing.TaxStandard, PeriodStart: in.PeriodStart, PeriodEnd: in.PeriodEnd},
				{Description: "ドリップコーヒー詰め合わせ", Quantity: 1, UnitAmount: 1500, Amount: 1500, TaxRate: billing.TaxReduced},
			},
			TaxBreakdown: []billing.TaxAmount{
				{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1200, Tax: 120},
				{Rate: billing.TaxReduced, Percent: 8, TaxableAmount: 1500, Tax: 120},
			},
			Subtotal: 2700, Tax: 240, Total: 2940, AmountDueBefore: 18180, AmountDueAfter: 15240,
			CustomerName: in.CustomerName, IssuerName: seller.Name, IssuerRegistrationNumber: seller.RegistrationNumber,
			EffectiveAt: *at(2027, 1, 10, 15, 0, 0), CreatedAt: *at(2027, 1, 10, 15, 0, 0),
		},
		Issuer: seller, Language: "ja", Location: jst,
	}
}

// creditNoteEN is a credit by amount (tax included) to an English customer's
// balance, with a memo.
func creditNoteEN() CreditNoteDoc {
	in := invoiceEN().Invoice
	return CreditNoteDoc{
		CreditNote: &billing.CreditNote{
			Number: "CN-2027-000002", Status: "issued", Reason: billing.ReasonProductUnsatisfactory, Outcome: billing.OutcomeCustomerBalance,
			Memo: "Service outage on Jan 5", TaxBehavior: billing.TaxInclusive, InvoiceNumber: *in.Number, InvoiceDate: *in.FinalizedAt,
			Lines:        []*billing.CreditNoteLine{{Quantity: 1, UnitAmount: 1100, Amount: 1100, TaxRate: billing.TaxStandard}},
			TaxBreakdown: []billing.TaxAmount{{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 1000, Tax: 100}},
			Subtotal:     1100, Tax: 100, Total: 1100, AmountDueBefore: 0, AmountDueAfter: 0,
			CustomerName: in.CustomerName, IssuerName: seller.Name, IssuerRegistrationNumber: seller.RegistrationNumber,
			EffectiveAt: *at(2027, 2, 3, 10, 0, 0), CreatedAt: *at(2027, 2, 3, 10, 0, 0),
		},
		Issuer:   billing.Issuer{Address: "Marunouchi Bldg. 10F, 1-1-1 Marunouchi, Chiyoda-ku, Tokyo 100-0005"},
		Language: "en", Location: jst,
	}
}

func TestCreditNoteDocuments(t *testing.T) {
	tests := []struct {
		name string
		doc  CreditNoteDoc
		want []string
	}{
		{"credit_note_ja", creditNoteJA(), []string{
			"返還請求書", "返還請求書番号", "CN-2027-000001", "返還日", "2027年1月10日", "元の請求書番号", "INV-2027-000123",
			"元の請求書の発行日", "2027年1月1日", "元のご請求期間：2027年1月1日〜2027年1月31日", "株式会社サンプル商事　御中",
			"登録番号：T4011001098993", "返還金額（税込）", "¥2,940", "返還理由：ご注文内容の変更", "精算方法：ご請求金額から減額",
			"ドリップコーヒー詰め合わせ ※", "※は軽減税率対象", "10%対象（税抜）", "¥1,200", "¥120", "8%対象（税抜）", "¥1,500",
			"合計（税込）", "減額後のご請求金額", "¥15,240",
		}},
		{"credit_note_en", creditNoteEN(), []string{
			"CREDIT NOTE", "Credit note number", "CN-2027-000002", "Refund date", "Feb 3, 2027", "Original invoice", "INV-2027-000124",
			"Original invoice date", "Jan 1, 2027", "Jane Smith", "Amount credited (tax incl.)", "¥1,100",
			"Reason: Product or service unsatisfactory", "Settlement: Credited to your balance for future invoices",
			"Note: Service outage on Jan 5", "Adjustment to invoice INV-2027-000124", "Subtotal (incl. tax)",
			"10% taxable (excl. tax)", "¥1,000", "¥100", "Registration number: T4011001098993",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := CreditNote(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := CreditNote(tt.doc)
			if !bytes.HasPrefix(doc, []byte("%PDF-")) || !bytes.Equal(doc, again) {
				t.Fatalf("not a PDF, or two renderings differ")
			}
			text := golden(t, tt.name, doc)
			flat := strings.Join(strings.Fields(text), " ")
			for _, w := range tt.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("text lacks %q", w)
				}
			}
			if tt.name == "credit_note_en" && strings.Contains(flat, "Amount due after") {
				t.Error("a credit to the balance shows an amount due after it")
			}
		})
	}
	if _, err := CreditNote(CreditNoteDoc{CreditNote: &billing.CreditNote{}}); err == nil {
		t.Error("a credit note without a number rendered")
	}
}
