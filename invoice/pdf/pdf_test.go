package pdf

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"

	"billingd/billing"
)

// fontFromBytes has fpdf parse all of IPAexGothic for the document, as
// unpatched fpdf must: the reference parsedFont is compared with.
func fontFromBytes(f *fpdf.Fpdf) error {
	f.AddUTF8FontFromBytes(fontName, "", ipaexGothic)
	return nil
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var jst = time.FixedZone("JST", 9*3600)

func at(y int, m time.Month, d, h, min, s int) *time.Time {
	t := time.Date(y, m, d, h, min, s, 0, jst).UTC()
	return &t
}

func ptr[T any](v T) *T { return &v }

var seller = billing.Issuer{
	Name:               "株式会社ビリングテスト",
	Address:            "〒100-0005 東京都千代田区丸の内1-1-1 丸の内ビルディング10階",
	RegistrationNumber: "T4011001098993",
}

// invoiceJA is a tax-exclusive invoice to a company with lines at every
// rate and one voucher with a code per store.
func invoiceJA() InvoiceDoc {
	return InvoiceDoc{
		Invoice: &billing.Invoice{
			Number: ptr("INV-2027-000123"), Status: billing.InvoiceOpen, TaxBehavior: billing.TaxExclusive,
			PeriodStart: at(2027, 1, 1, 0, 0, 0), PeriodEnd: at(2027, 2, 1, 0, 0, 0),
			FinalizedAt: at(2027, 1, 1, 0, 5, 0), DueDate: at(2027, 1, 31, 23, 59, 59),
			Lines: []*billing.InvoiceLine{
				{Description: "クラウド会計 スタンダードプラン（2027年1月分）", Quantity: 1, UnitAmount: 9800, Amount: 9800, TaxRate: billing.TaxStandard},
				{Description: "追加ユーザー", Quantity: 3, UnitAmount: 1200, Amount: 3600, TaxRate: billing.TaxStandard},
				{Description: "ドリップコーヒー詰め合わせ", Quantity: 2, UnitAmount: 1500, Amount: 3000, TaxRate: billing.TaxReduced},
				{Description: "収入印紙代（立替金）", Quantity: 1, UnitAmount: 200, Amount: 200, TaxRate: billing.TaxExempt},
			},
			TaxBreakdown: []billing.TaxAmount{
				{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 13400, Tax: 1340},
				{Rate: billing.TaxReduced, Percent: 8, TaxableAmount: 3000, Tax: 240},
				{Rate: billing.TaxExempt, Percent: 0, TaxableAmount: 200, Tax: 0},
			},
			Subtotal: 16600, Tax: 1580, Total: 18180, AmountDue: 18180, AmountRemaining: 18180,
			CustomerName: "株式会社サンプル商事", IssuerName: seller.Name, IssuerRegistrationNumber: seller.RegistrationNumber,
		},
		Issuer: seller, Language: "ja", Location: jst,
		Vouchers: []*billing.Voucher{{
			Amount: 18180, ExpiresAt: at(2027, 1, 31, 23, 59, 59),
			PaymentCodes: []billing.PaymentCode{
				{Store: "familymart", PaymentCode: "123456789012", ConfirmationNumber: "7401"},
				{Store: "lawson", PaymentCode: "LW-2027-55501", ConfirmationNumber: "7402"},
				{Store: "ministop", PaymentCode: "MS-2027-55502", ConfirmationNumber: "7403"},
				{Store: "seicomart", PaymentCode: "SC-2027-55503", ConfirmationNumber: "7404"},
			},
			InstructionsURL: "https://payments.example.com/konbini/voucher/test_YWNjdF8xTjlLbW9BZmFrZV9rb25iaW5p",
		}},
		PaymentURL: "https://billing.example.jp/pay/Kf3v9QeR1xY7bL2mN8pT4wZ6cH0jD5sA",
	}
}

// invoiceEN is a tax-inclusive invoice to a person, with a credit applied
// and one code valid at every store (as Opn gives).
func invoiceEN() InvoiceDoc {
	return InvoiceDoc{
		Invoice: &billing.Invoice{
			Number: ptr("INV-2027-000124"), Status: billing.InvoiceOpen, TaxBehavior: billing.TaxInclusive,
			PeriodStart: at(2027, 1, 1, 0, 0, 0), PeriodEnd: at(2027, 2, 1, 0, 0, 0),
			FinalizedAt: at(2027, 1, 1, 0, 5, 0), DueDate: at(2027, 1, 31, 23, 59, 59),
			Lines: []*billing.InvoiceLine{
				{Description: "Cloud Accounting, Standard plan (January 2027)", Quantity: 1, UnitAmount: 10780, Amount: 10780, TaxRate: billing.TaxStandard},
				{Description: "Drip coffee assortment", Quantity: 2, UnitAmount: 1620, Amount: 3240, TaxRate: billing.TaxReduced},
			},
			TaxBreakdown: []billing.TaxAmount{
				{Rate: billing.TaxStandard, Percent: 10, TaxableAmount: 9800, Tax: 980},
				{Rate: billing.TaxReduced, Percent: 8, TaxableAmount: 3000, Tax: 240},
			},
			Subtotal: 14020, Tax: 1220, Total: 14020, StartingBalance: -1000, AmountDue: 13020, AmountRemaining: 13020,
			CustomerName: "Jane Smith", IssuerName: seller.Name, IssuerRegistrationNumber: seller.RegistrationNumber,
		},
		Issuer:   billing.Issuer{Address: "Marunouchi Bldg. 10F, 1-1-1 Marunouchi, Chiyoda-ku, Tokyo 100-0005"},
		Language: "en", Location: jst,
		Vouchers: []*billing.Voucher{{
			Amount: 13020, ExpiresAt: at(2027, 1, 31, 23, 59, 59),
			PaymentCodes: []billing.PaymentCode{{PaymentCode: "998877665544"}},
		}},
		PaymentURL: "https://billing.example.jp/pay/Zq8wE3rT5yU7iO9pA1sD3fG5hJ7kL9xC",
	}
}

// invoiceOdd has rare kanji, a rune beyond the font's range, Latin-1 and
// halfwidth kana.
func invoiceOdd() InvoiceDoc {
	doc := invoiceJA()
	doc.Invoice.CustomerName = "髙橋﨑 𠮷野家 ½ café"
	doc.Invoice.Lines[0].Description = "未登録の品目 ㈱ ①②③ ﾊﾝｶｸ"
	return doc
}

// invoiceRare prints glyphs past IPAexGothic's last full metric (恢, 甑,
// 彐, ㋿, ⿰), whose metrics fpdf used to write into the font.
func invoiceRare() InvoiceDoc {
	doc := invoiceJA()
	doc.Invoice.CustomerName = "恢復 甑 彐 匇 株式会社"
	doc.Invoice.Lines[0].Description = "㋿元年度 ⿰ 保守"
	return doc
}

func receiptJA() ReceiptDoc {
	in := invoiceJA().Invoice
	in.Status, in.AmountPaid, in.AmountRemaining, in.PaidAt = billing.InvoicePaid, 18180, 0, at(2027, 1, 15, 14, 3, 0)
	return ReceiptDoc{Invoice: in, Issuer: seller, Language: "ja", Location: jst, Store: "lawson"}
}

func receiptEN() ReceiptDoc {
	in := invoiceEN().Invoice
	in.Status, in.AmountPaid, in.AmountRemaining, in.PaidAt = billing.InvoicePaid, 13020, 0, at(2027, 1, 15, 14, 3, 0)
	return ReceiptDoc{Invoice: in, Issuer: seller, Language: "en", Location: jst, Store: "familymart"}
}

// pdfText extracts a PDF's text with pdftotext, keeping the layout.
func pdfText(t *testing.T, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext not found (apt-get install poppler-utils): the PDFs' text is not checked")
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

// golden compares a document with its golden files, its bytes with
// testdata/name.pdf and its text with testdata/name.txt, and returns the
// text.
//
// The golden PDFs were made by fpdf as released (before billingd's patches
// in fpdf/): that they still match shows the patches change nothing in the
// output. Rewrite them (-update) only for a change to the documents
// themselves, and look at the new ones.
func golden(t *testing.T, name string, doc []byte) string {
	t.Helper()
	compare(t, name+".pdf", doc, "")
	text := pdfText(t, doc)
	compare(t, name+".txt", []byte(text), "text of the ")
	return text
}

func compare(t *testing.T, name string, got []byte, what string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%sthe PDF differs from %s (go test -update rewrites it)", what, path)
		if what != "" {
			t.Logf("%s", got)
		}
	}
}

func TestDocuments(t *testing.T) {
	tests := []struct {
		name   string
		render func() ([]byte, error)
		want   []string
	}{
		{"invoice_ja", func() ([]byte, error) { return Invoice(invoiceJA()) }, []string{
			"請求書", "INV-2027-000123", "株式会社サンプル商事　御中", "発行日", "2027年1月1日",
			"ご請求期間：2027年1月1日〜2027年1月31日", "株式会社ビリングテスト", "登録番号：T4011001098993",
			"ご請求金額（税込）", "¥18,180", "ドリップコーヒー詰め合わせ ※", "※は軽減税率対象",
			"小計（税抜）", "¥16,600", "10%対象（税抜）", "¥13,400", "¥1,340", "8%対象（税抜）", "¥3,000", "¥240",
			"非課税", "¥200", "消費税", "合計（税込）",
			"お支払期限", "2027年1月31日 23:59", "ファミリーマート", "123456789012", "7401",
			"ローソン", "LW-2027-55501", "ミニストップ", "セイコーマート", "SC-2027-55503", "7404",
			"お支払いページ", "https://billing.example.jp/pay/Kf3v9QeR1xY7bL2mN8pT4wZ6cH0jD5sA",
		}},
		{"invoice_en", func() ([]byte, error) { return Invoice(invoiceEN()) }, []string{
			"INVOICE", "INV-2027-000124", "Bill to", "Jane Smith", "Issue date", "Jan 1, 2027",
			"Billing period: Jan 1, 2027 – Jan 31, 2027", "株式会社ビリングテスト", "Registration number: T4011001098993",
			"Amount due (tax incl.)", "¥13,020", "Drip coffee assortment ※", "※ Reduced tax rate (8%) item",
			"Subtotal (incl. tax)", "¥14,020", "10% taxable (excl. tax)", "¥9,800", "¥980",
			"8% taxable (excl. tax)", "¥3,000", "¥240", "Balance carried or applied", "-¥1,000",
			"Pay by", "Jan 31, 2027 23:59 JST", "All stores", "998877665544",
			"Pay at: FamilyMart, Lawson, Ministop, Seicomart", "Payment page",
		}},
		{"invoice_odd", func() ([]byte, error) { return Invoice(invoiceOdd()) }, []string{
			"髙橋﨑 ?野家 ½ café", "未登録の品目 ㈱ ①②③ ﾊﾝｶｸ",
		}},
		{"invoice_rare", func() ([]byte, error) { return Invoice(invoiceRare()) }, []string{
			"恢復 甑 彐 匇 株式会社", "㋿元年度 ⿰ 保守",
		}},
		{"receipt_ja", func() ([]byte, error) { return Receipt(receiptJA()) }, []string{
			"領収書", "INV-2027-000123", "株式会社サンプル商事　御中", "領収日", "2027年1月15日",
			"領収金額（税込）", "¥18,180", "但し 請求書 INV-2027-000123 のお支払いとして", "コンビニ払い（ローソン）",
			"上記の金額を正に領収いたしました。", "10%対象（税抜）", "¥1,340", "8%対象（税抜）", "¥240", "登録番号：T4011001098993",
		}},
		{"receipt_en", func() ([]byte, error) { return Receipt(receiptEN()) }, []string{
			"RECEIPT", "INV-2027-000124", "Jane Smith", "Date received", "Jan 15, 2027", "¥13,020",
			"For payment of invoice INV-2027-000124", "Payment method: Convenience store payment (FamilyMart)", "Received from",
			"10% taxable (excl. tax)", "¥980", "Registration number: T4011001098993",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := tt.render()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(doc, []byte("%PDF-")) {
				t.Fatalf("not a PDF: %.20q", doc)
			}
			text := golden(t, tt.name, doc)
			flat := strings.Join(strings.Fields(text), " ") // the layout's spacing aside
			for _, w := range tt.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("text lacks %q", w)
				}
			}
		})
	}
}

// TestDeterministic renders each document many times at once with the
// font parsed once (the race detector watches what the documents share), and
// once with fpdf parsing the font itself: every rendering gives the same
// bytes. The creation date is the invoice's finalization in JST.
func TestDeterministic(t *testing.T) {
	docs := map[string]func(addFont) ([]byte, error){
		"invoice_ja":     func(f addFont) ([]byte, error) { return invoicePDF(invoiceJA(), f) },
		"invoice_en":     func(f addFont) ([]byte, error) { return invoicePDF(invoiceEN(), f) },
		"invoice_odd":    func(f addFont) ([]byte, error) { return invoicePDF(invoiceOdd(), f) },
		"invoice_rare":   func(f addFont) ([]byte, error) { return invoicePDF(invoiceRare(), f) },
		"receipt_ja":     func(f addFont) ([]byte, error) { return receiptPDF(receiptJA(), f) },
		"credit_note_ja": func(f addFont) ([]byte, error) { return creditNotePDF(creditNoteJA(), f) },
	}
	for name, render := range docs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := render(fontFromBytes)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					got, err := render(parsedFont)
					if err != nil {
						t.Error(err)
					} else if !bytes.Equal(got, want) {
						t.Error("renderings differ")
					}
				})
			}
			wg.Wait()
		})
	}
	doc, _ := Invoice(invoiceJA())
	if !bytes.Contains(doc, []byte("(D:20270101000500)")) {
		t.Error("the creation date is not the invoice's finalization time in JST")
	}
}

// TestFontUnchanged: rendering never writes into the font the documents
// share (fpdf wrote the metrics of some glyphs into it, so a document came
// out different after another had printed 恢), and what a document prints
// does not depend on what was printed before.
func TestFontUnchanged(t *testing.T) {
	before := sha256.Sum256(ipaexGothic)
	doc := invoiceJA()
	doc.Invoice.CustomerName = "匇"
	first, err := Invoice(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Invoice(invoiceRare()); err != nil {
		t.Fatal(err)
	}
	again, err := Invoice(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("the same invoice rendered differently after another")
	}
	if sha256.Sum256(ipaexGothic) != before {
		t.Error("rendering changed the embedded font")
	}
}

// TestLabelsHaveGlyphs checks the font has every rune of the fixed words.
func TestLabelsHaveGlyphs(t *testing.T) {
	font, err := parsed()
	if err != nil {
		t.Fatal(err)
	}
	check := func(s string) {
		for _, r := range s {
			if r != ' ' && !font.HasRune(r) {
				t.Errorf("IPAexGothic has no glyph for %q (in %q)", r, s)
			}
		}
	}
	for _, l := range []labels{ja, en} {
		v := reflect.ValueOf(l)
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				check(f.String())
			case reflect.Map:
				for it := f.MapRange(); it.Next(); {
					check(it.Value().String())
				}
			}
		}
	}
	check("¥年月日〜※–御中様、：（）　0123456789,-")
	if font.HasRune('𠮷') || font.HasRune(0xE000) {
		t.Error("HasRune finds a rune IPAexGothic does not have")
	}
}

// TestManyLines renders an invoice whose lines, some wrapping, take more
// than a page.
func TestManyLines(t *testing.T) {
	doc := invoiceJA()
	in := doc.Invoice
	in.Lines = nil
	for i := range 60 {
		desc := fmt.Sprintf("明細 %d", i+1)
		if i%10 == 0 {
			desc += "：長い品目名が一行に収まらないときは折り返して次の行に続けて表示します（株式会社サンプル商事向け特別サポート）"
		}
		in.Lines = append(in.Lines, &billing.InvoiceLine{Description: desc, Quantity: 1, UnitAmount: 100, Amount: 100, TaxRate: billing.TaxStandard})
	}
	pdf, err := Invoice(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, pdf)
	if pages := strings.Count(text, "\f"); pages < 2 {
		t.Errorf("%d page(s), want at least 2", pages)
	}
	flat := strings.Join(strings.Fields(text), "")
	for _, w := range []string{"明細60", "長い品目名が", "特別サポート）", "ご請求金額", "SC-2027-55503"} {
		if !strings.Contains(flat, w) {
			t.Errorf("text lacks %q", w)
		}
	}
}

// TestQRCode reads the QR code back with zbarimg, where it is installed.
func TestQRCode(t *testing.T) {
	zbar, err1 := exec.LookPath("zbarimg")
	ppm, err2 := exec.LookPath("pdftoppm")
	if err1 != nil || err2 != nil {
		t.Skip("zbarimg or pdftoppm not found (apt-get install zbar-tools poppler-utils): the QR code is not read back")
	}
	doc, err := Invoice(invoiceJA())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "doc.pdf"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ppm, "-png", "-r", "150", filepath.Join(dir, "doc.pdf"), filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	out, err := exec.Command(zbar, "-q", "--raw", filepath.Join(dir, "page-1.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != invoiceJA().PaymentURL {
		t.Errorf("QR code reads %q, want %q", got, invoiceJA().PaymentURL)
	}
}

func TestHonorific(t *testing.T) {
	for name, want := range map[string]string{"株式会社サンプル": "御中", "サンプル（株）": "御中", "山田太郎": "様", "阿部花子": "様"} {
		if got := honorific(name); got != want {
			t.Errorf("honorific(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestNotFinalized(t *testing.T) {
	if _, err := Invoice(InvoiceDoc{Invoice: &billing.Invoice{}}); err == nil {
		t.Error("a draft rendered")
	}
}

// BenchmarkInvoicePDF renders the Japanese sample invoice. Per core:
// go test -run '^$' -bench InvoicePDF -cpu 1 ./invoice/pdf/
func BenchmarkInvoicePDF(b *testing.B) {
	benchmark(b, func() ([]byte, error) { return Invoice(invoiceJA()) })
}

// BenchmarkInvoicePDFFontFromBytes is the same with fpdf parsing the font
// for each document, for comparison.
func BenchmarkInvoicePDFFontFromBytes(b *testing.B) {
	benchmark(b, func() ([]byte, error) { return invoicePDF(invoiceJA(), fontFromBytes) })
}

// BenchmarkReceiptPDF renders the Japanese sample receipt.
func BenchmarkReceiptPDF(b *testing.B) {
	benchmark(b, func() ([]byte, error) { return Receipt(receiptJA()) })
}

func benchmark(b *testing.B, render func() ([]byte, error)) {
	if _, err := render(); err != nil { // parses the font once, outside the timing
		b.Fatal(err)
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		doc, err := render()
		if err != nil {
			b.Fatal(err)
		}
		size = len(doc)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "PDFs/s")
	b.ReportMetric(float64(size), "bytes/PDF")
}

// TestProrationLineHasNoUnitPrice: a proration line is a share of a period
// (its description says which): it shows its quantity and amount, not a
// unit price that times the quantity would not give the amount.
func TestProrationLineHasNoUnitPrice(t *testing.T) {
	doc := invoiceJA()
	in := doc.Invoice
	in.Lines = append(in.Lines, &billing.InvoiceLine{Description: "追加ユーザー 未使用分の返金（2027/01/21〜2027/02/01）", Quantity: 3,
		UnitAmount: 7777, Amount: -1277, TaxRate: billing.TaxStandard, Proration: true})
	pdf, err := Invoice(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, pdf)
	if strings.Contains(text, "7,777") || !strings.Contains(text, "-¥1,277") {
		t.Errorf("proration line: unit price shown, or amount missing:\n%s", text)
	}
}

// TestLinePeriodPrinted: a line whose period the invoice's does not cover
// (a one-off invoice for work done earlier) prints it: the transaction date
// a qualified invoice must give.
func TestLinePeriodPrinted(t *testing.T) {
	doc := invoiceJA()
	in := doc.Invoice
	in.PeriodStart, in.PeriodEnd = nil, nil
	in.Lines[1].PeriodStart, in.Lines[1].PeriodEnd = at(2027, 2, 1, 0, 0, 0), at(2027, 2, 11, 0, 0, 0)
	pdf, err := Invoice(doc)
	if err != nil {
		t.Fatal(err)
	}
	if flat := strings.Join(strings.Fields(pdfText(t, pdf)), ""); !strings.Contains(flat, "(2027年2月1日〜2027年2月10日)") {
		t.Errorf("the line's period is not printed:\n%s", flat)
	}
}
