package mail

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"billingd/billing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func sampleData(lang string) MailData {
	return MailData{
		Language:      lang,
		CustomerName:  "山田 太郎",
		IssuerName:    "株式会社サンプル",
		InvoiceNumber: "INV-2027-000123",
		Amount:        12345,
		Deadline:      time.Date(2027, 1, 31, 14, 59, 59, 0, time.UTC), // 23:59:59 JST
		DaysLeft:      3,
		PaidAt:        time.Date(2027, 1, 20, 3, 4, 0, 0, time.UTC),
		PaymentCodes: []billing.PaymentCode{
			{Store: "familymart", PaymentCode: "123456789012", ConfirmationNumber: "0123456789"},
			{Store: "lawson", PaymentCode: "LW-987654", ConfirmationNumber: "4567"},
			{Store: "seicomart", PaymentCode: "SC-555"},
		},
		PayURL:              "https://billing.example.jp/pay/tok_3f9a",
		CreditNoteNumber:    "CN-2027-000007",
		CreditAmount:        1100,
		CreditOutcome:       "reduce_amount_due",
		SubscriptionOutcome: "unpaid",
	}
}

// TestRenderGolden compares each kind's subject and bodies, per language,
// with testdata/<kind>.<lang>.txt and .html; -update rewrites them.
func TestRenderGolden(t *testing.T) {
	for _, lang := range Languages {
		for _, kind := range Kinds {
			t.Run(string(kind)+"."+lang, func(t *testing.T) {
				subject, text, html, err := Render(kind, sampleData(lang))
				if err != nil {
					t.Fatal(err)
				}
				golden(t, string(kind)+"."+lang+".txt", "Subject: "+subject+"\n\n"+text)
				golden(t, string(kind)+"."+lang+".html", html)
			})
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

func TestRender(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			lang    string
			want    []string
			subject string
		}{
			{"ja", []string{"12,345円", "2027年1月31日 23:59", "ファミリーマート", "123456789012", "0123456789"}, "【株式会社サンプル】ご請求書（INV-2027-000123）のお知らせ"},
			{"en", []string{"¥12,345", "31 Jan 2027 23:59 JST", "FamilyMart", "123456789012", "0123456789"}, "Invoice INV-2027-000123 from 株式会社サンプル"},
			{"fr", []string{"12,345円"}, "【株式会社サンプル】ご請求書（INV-2027-000123）のお知らせ"},
		} {
			subject, text, html, err := Render(KindInvoice, sampleData(tc.lang))
			if err != nil {
				t.Fatal(err)
			}
			if subject != tc.subject {
				t.Errorf("%s: subject %q, want %q", tc.lang, subject, tc.subject)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) || !strings.Contains(html, w) {
					t.Errorf("%s: %q missing from the text or the HTML", tc.lang, w)
				}
			}
		}
	})

	t.Run("SingleCodeForAllStores", func(t *testing.T) {
		d := sampleData("ja")
		d.PaymentCodes = []billing.PaymentCode{{PaymentCode: "998877"}}
		_, text, _, err := Render(KindReminder, d)
		if err != nil || !strings.Contains(text, "■ 各コンビニ共通\n  お支払番号：998877\n") {
			t.Errorf("%v\n%s", err, text)
		}
	})

	t.Run("HTMLEscaped", func(t *testing.T) {
		d := sampleData("en")
		d.CustomerName = `<script>alert("x")</script>`
		d.PayURL = "javascript:alert(1)"
		subject, _, html, err := Render(KindInvoice, d)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html, "<script>") || strings.Contains(html, "javascript:") {
			t.Errorf("unescaped input in the HTML:\n%s", html)
		}
		if strings.Contains(subject, "\n") {
			t.Errorf("subject spans lines: %q", subject)
		}
	})

	t.Run("ErrUnknownKind", func(t *testing.T) {
		if _, _, _, err := Render("dunning", sampleData("ja")); billing.ErrorCode(err) != billing.EINVALID {
			t.Errorf("error %v, want EINVALID", err)
		}
	})
}

// TestCreditNoteAndOverdueVariants checks the wording of each credit note
// outcome and each subscription outcome, in both languages.
func TestCreditNoteAndOverdueVariants(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    Kind
		lang    string
		edit    func(*MailData)
		want    []string
		notWant []string
	}{
		{"ReducedWithNewCode", KindCreditNote, "ja", func(*MailData) {}, []string{"返還金額（税込）：1,100円", "減額後のご請求金額：12,345円", "123456789012", "CN-2027-000007"}, []string{"お支払いは不要"}},
		{"ReducedNoCode", KindCreditNote, "ja", func(d *MailData) { d.PaymentCodes = nil }, []string{"減額後のご請求金額：12,345円", "お問い合わせください"}, []string{"123456789012"}},
		{"ReducedToNothing", KindCreditNote, "ja", func(d *MailData) { d.Amount = 0 }, []string{"お支払いは不要になりました"}, []string{"123456789012"}},
		{"Balance", KindCreditNote, "ja", func(d *MailData) { d.CreditOutcome = "customer_balance" }, []string{"残高に計上"}, []string{"123456789012"}},
		{"OutOfBand", KindCreditNote, "en", func(d *MailData) { d.CreditOutcome = "out_of_band" }, []string{"refunded to you separately", "¥1,100"}, []string{"123456789012"}},
		{"ReducedEN", KindCreditNote, "en", func(*MailData) {}, []string{"Amount due now: ¥12,345", "123456789012"}, nil},
		{"OverdueCanceled", KindOverdue, "ja", func(d *MailData) { d.SubscriptionOutcome = "canceled" }, []string{"解約いたしました", "12,345円"}, []string{"停止"}},
		{"OverdueOneOff", KindOverdue, "en", func(d *MailData) { d.SubscriptionOutcome = "" }, []string{"expired before we received a payment"}, []string{"subscription"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := sampleData(tc.lang)
			tc.edit(&d)
			_, text, html, err := Render(tc.kind, d)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) || strings.Contains(html, w) {
					t.Errorf("%q should not appear:\n%s", w, text)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		ja, en string
	}{
		{0, "0円", "¥0"},
		{999, "999円", "¥999"},
		{1000, "1,000円", "¥1,000"},
		{12345, "12,345円", "¥12,345"},
		{1234567, "1,234,567円", "¥1,234,567"},
		{-300000, "-300,000円", "-¥300,000"},
	} {
		if got := FormatYen(tc.amount, "ja"); got != tc.ja {
			t.Errorf("FormatYen(%d, ja) = %q, want %q", tc.amount, got, tc.ja)
		}
		if got := FormatYen(tc.amount, "en"); got != tc.en {
			t.Errorf("FormatYen(%d, en) = %q, want %q", tc.amount, got, tc.en)
		}
	}
	at := time.Date(2027, 1, 31, 14, 59, 59, 0, time.UTC)
	if got := FormatTime(at, "ja"); got != "2027年1月31日 23:59" {
		t.Errorf("FormatTime ja = %q", got)
	}
	if got := FormatTime(at, "en"); got != "31 Jan 2027 23:59 JST" {
		t.Errorf("FormatTime en = %q", got)
	}
}

func BenchmarkRender(b *testing.B) {
	d := sampleData("ja")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := Render(KindInvoice, d); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPartsListed: an invoice collected in parts lists each part with its
// own amount, deadline and codes, in both languages and both bodies.
func TestPartsListed(t *testing.T) {
	for _, lang := range Languages {
		d := sampleData(lang)
		d.Amount = 99000
		d.Parts = []Part{
			{Number: 1, Amount: 49500, Deadline: d.Deadline, PaymentCodes: []billing.PaymentCode{{Store: "lawson", PaymentCode: "LW-PART-1"}}},
			{Number: 2, Amount: 49500, Deadline: d.Deadline.AddDate(0, 0, 1), PaymentCodes: []billing.PaymentCode{{Store: "lawson", PaymentCode: "LW-PART-2"}}},
		}
		_, text, html, err := Render(KindInvoice, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{text, html} {
			i1, i2 := strings.Index(body, "LW-PART-1"), strings.Index(body, "LW-PART-2")
			if i1 < 0 || i2 < i1 || strings.Count(body, "49,500") != 2 || strings.Contains(body, "123456789012") {
				t.Errorf("%s: parts not listed with their amounts and codes:\n%s", lang, body)
			}
		}
	}
}
