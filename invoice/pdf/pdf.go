package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-pdf/fpdf"
	"rsc.io/qr"

	"billingd/billing"
)

// InvoiceDoc is what an invoice PDF shows.
type InvoiceDoc struct {
	// Invoice is a finalized invoice: its number, dates, period, lines,
	// totals, tax breakdown and recipient (CustomerName) are printed. Its
	// IssuerName and IssuerRegistrationNumber, copied in at finalization,
	// win over Issuer's.
	Invoice *billing.Invoice
	// Issuer is the seller: its address, and its name and registration
	// number where the invoice has none.
	Issuer billing.Issuer
	// Honorific follows the recipient's name in Japanese: "御中" or "様".
	// Empty picks 御中 for names with a corporate designation (株式会社, …)
	// and 様 for the others.
	Honorific string
	// Language is the customer's: "en" for English, anything else Japanese.
	Language string
	// Location is the time zone of every printed date (Asia/Tokyo if nil).
	Location *time.Location
	// Vouchers are the invoice's live Konbini vouchers, one per part: their
	// amounts, deadlines and payment codes make the payment section.
	Vouchers []*billing.Voucher
	// PaymentURL is the customer's payment page, printed with a QR code.
	PaymentURL string
	// Date is the PDF's creation date; zero means the invoice's
	// finalization. Nothing else makes the bytes vary.
	Date time.Time
}

// ReceiptDoc is what a receipt (領収書) PDF shows.
type ReceiptDoc struct {
	// Invoice is the paid invoice: its number, recipient and tax breakdown.
	Invoice *billing.Invoice
	// Issuer is the seller, as for InvoiceDoc.
	Issuer billing.Issuer
	// Honorific is as for InvoiceDoc.
	Honorific string
	// Language is the customer's: "en" for English, anything else Japanese.
	Language string
	// Location is the time zone of the printed date (Asia/Tokyo if nil).
	Location *time.Location
	// Amount is the amount received; zero means the invoice's AmountPaid.
	Amount int64
	// PaidAt is when the payment arrived: the receipt's date and the PDF's
	// creation date; zero means the invoice's PaidAt.
	PaidAt time.Time
	// Store is where the customer paid ("familymart", "lawson", "ministop",
	// "seicomart"), if known.
	Store string
}

// Invoice renders a qualified invoice (適格請求書) on A4 with its payment
// section: amount, deadline, payment codes per store and a QR code of the
// payment page. The same doc always gives the same bytes.
func Invoice(doc InvoiceDoc) ([]byte, error) { return invoicePDF(doc, parsedFont) }

// Receipt renders a receipt (領収書) for a payment of an invoice, on A4.
// The same doc always gives the same bytes.
func Receipt(doc ReceiptDoc) ([]byte, error) { return receiptPDF(doc, parsedFont) }

// meta is a document's PDF metadata.
type meta struct {
	title, author, lang string
	date                time.Time
}

// render draws a one-page A4 document.
func render(m meta, font addFont, draw func(*page)) ([]byte, error) {
	f := fpdf.New("P", "mm", "A4", "")
	f.SetCatalogSort(true)
	f.SetCreationDate(m.date)
	f.SetModificationDate(m.date)
	f.SetTitle(m.title, true)
	f.SetAuthor(m.author, true)
	f.SetLang(m.lang)
	f.SetMargins(left, 15, 210-right)
	f.SetAutoPageBreak(false, 0)
	if err := font(f); err != nil {
		return nil, err
	}
	f.SetFont(fontName, "", 9)
	f.AddPage()
	draw(&page{f: f})
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, fmt.Errorf("pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// Page geometry, in mm.
const (
	left, right = 15.0, 195.0
	width       = right - left
	bottom      = 282.0 // lowest y content may reach
)

// page wraps fpdf: all text goes through it, so that it is printable.
type page struct {
	f *fpdf.Fpdf
}

// clean makes s printable: control characters become spaces and runes the
// font cannot have (beyond the BMP) become "?".
func (p *page) clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r > 0xFFFF:
			return '?'
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
}

// text prints s in a cell of w×h at (x, y), aligned "L", "C" or "R".
func (p *page) text(x, y, w, h float64, s, align string) {
	p.f.SetXY(x, y)
	p.f.CellFormat(w, h, p.clean(s), "", 0, align, false, 0, "")
}

// box prints s in a cell with a border and a fill ("" for none).
func (p *page) box(x, y, w, h float64, s, align, border string, fill bool) {
	p.f.SetXY(x, y)
	p.f.CellFormat(w, h, p.clean(s), border, 0, align, fill, 0, "")
}

// wrap prints s wrapped to width w from (x, y) and returns the y below it.
func (p *page) wrap(x, y, w, h float64, s string) float64 {
	for _, ln := range p.lines(s, w) {
		p.text(x, y, w, h, ln, "L")
		y += h
	}
	return y
}

// noLineStart are the punctuation marks a Japanese line does not start
// with: they stay at the end of the line before (kinsoku), slightly over.
const noLineStart = "、。，．）」』】・"

// lines splits s into the lines it takes at width w: between any two
// runes of Japanese text, at the last space within a word of Latin text.
// (fpdf's own MultiCell and SplitText drop the kanji they break at.)
func (p *page) lines(s string, w float64) []string {
	max := w - 2*p.f.GetCellMargin()
	latin := func(r rune) bool { return r < 0x2E80 && r != ' ' }
	var out []string
	var line []rune
	lw, space := 0.0, -1
	for _, r := range p.clean(s) {
		rw := p.f.GetStringWidth(string(r))
		if n := len(line); lw+rw > max && n > 0 && !strings.ContainsRune(noLineStart, r) {
			if space > 0 && latin(r) && latin(line[n-1]) {
				out = append(out, string(line[:space]))
				line = append([]rune(nil), line[space+1:]...)
			} else {
				out = append(out, strings.TrimRight(string(line), " "))
				line = line[:0]
			}
			lw, space = p.f.GetStringWidth(string(line)), -1
			if r == ' ' {
				continue
			}
		}
		if r == ' ' {
			space = len(line)
		}
		line = append(line, r)
		lw += rw
	}
	return append(out, string(line))
}

func (p *page) size(pt float64) { p.f.SetFontSize(pt) }

// need starts a new page unless h mm fit below y, and returns where to go on.
func (p *page) need(y, h float64) float64 {
	if y+h <= bottom {
		return y
	}
	p.f.AddPage()
	return 15
}

func location(loc *time.Location) *time.Location {
	if loc == nil {
		return billing.DefaultSettings().Location
	}
	return loc
}

// issuer returns the seller as printed: the invoice's copy of name and
// registration number where it has one.
func issuer(in *billing.Invoice, is billing.Issuer) billing.Issuer {
	if in.IssuerName != "" {
		is.Name = in.IssuerName
	}
	if in.IssuerRegistrationNumber != "" {
		is.RegistrationNumber = in.IssuerRegistrationNumber
	}
	return is
}

func invoicePDF(doc InvoiceDoc, font addFont) ([]byte, error) {
	in := doc.Invoice
	if in == nil || in.Number == nil || in.FinalizedAt == nil {
		return nil, errors.New("pdf: the invoice is not finalized")
	}
	loc, l := location(doc.Location), labelsFor(doc.Language)
	date := doc.Date
	if date.IsZero() {
		date = *in.FinalizedAt
	}
	is := issuer(in, doc.Issuer)
	m := meta{title: l.invoice + " " + *in.Number, author: is.Name, lang: langTag(l), date: date.In(loc)}
	return render(m, font, func(p *page) {
		d := drawer{p: p, l: l, loc: loc}
		rows := [][2]string{{l.number, *in.Number}, {l.issued, l.date(in.FinalizedAt.In(loc))}}
		if in.DueDate != nil {
			rows = append(rows, [2]string{l.due, l.dateTime(in.DueDate.In(loc))})
		}
		y := d.header(l.invoice, l.billTo, rows, in.CustomerName, doc.Honorific)
		if in.PeriodStart != nil && in.PeriodEnd != nil {
			p.size(9)
			p.text(left, y, 100, 6, l.period+sep(l)+l.span(in.PeriodStart.In(loc), in.PeriodEnd.In(loc)), "L")
		}
		yr := d.issuer(y, is)
		p.size(9)
		p.text(left, y+9, 100, 6, l.intro, "L")
		d.amountBox(y+16, l.amountDue, in.AmountDue)
		y = max(y+32, yr) + 6
		y = d.lineItems(y, in)
		y = d.totals(y, in, true)
		if len(doc.Vouchers) > 0 || doc.PaymentURL != "" {
			d.payment(y+8, doc.Vouchers, doc.PaymentURL)
		}
	})
}

func receiptPDF(doc ReceiptDoc, font addFont) ([]byte, error) {
	in := doc.Invoice
	if in == nil || in.Number == nil {
		return nil, errors.New("pdf: the invoice is not finalized")
	}
	paidAt := doc.PaidAt
	if paidAt.IsZero() && in.PaidAt != nil {
		paidAt = *in.PaidAt
	}
	if paidAt.IsZero() {
		return nil, errors.New("pdf: receipt without a payment date")
	}
	amount := doc.Amount
	if amount == 0 {
		amount = in.AmountPaid
	}
	loc, l := location(doc.Location), labelsFor(doc.Language)
	is := issuer(in, doc.Issuer)
	m := meta{title: l.receipt + " " + *in.Number, author: is.Name, lang: langTag(l), date: paidAt.In(loc)}
	return render(m, font, func(p *page) {
		d := drawer{p: p, l: l, loc: loc}
		y := d.header(l.receipt, l.receivedFrom, [][2]string{{l.number, *in.Number}, {l.received, l.date(paidAt.In(loc))}}, in.CustomerName, doc.Honorific)
		yr := d.issuer(y, is)
		d.amountBox(y+4, l.amountReceived, amount)
		p.size(9)
		p.text(left, y+20, 100, 6, fmt.Sprintf(l.receiptFor, *in.Number), "L")
		method := l.konbini
		if name, ok := l.storeNames[doc.Store]; ok && l == &en {
			method += " (" + name + ")"
		} else if ok {
			method += "（" + name + "）"
		}
		p.text(left, y+26, 100, 6, l.method+sep(l)+method, "L")
		p.text(left, y+32, 100, 6, l.receiptIntro, "L")
		y = max(y+44, yr+6)
		p.size(10.5)
		p.text(left, y, width, 7, l.breakdown+sep(l)+l.number+" "+*in.Number, "L")
		// The invoice's totals by rate, then what took it to the amount
		// received: the balance applied and credit notes before payment.
		d.totals(y+8, in, in.StartingBalance != 0 || in.PrePaymentCreditNotes != 0)
	})
}

func langTag(l *labels) string {
	if l == &en {
		return "en"
	}
	return "ja"
}

// sep is what follows a label before its value.
func sep(l *labels) string {
	if l == &en {
		return ": "
	}
	return "："
}

// drawer draws the parts the documents share.
type drawer struct {
	p   *page
	l   *labels
	loc *time.Location
}

// header draws the title, the numbered rows at the right (number, dates)
// and the recipient at the left, and returns the y below them.
func (d drawer) header(title, to string, rows [][2]string, recipient, hon string) float64 {
	p, l := d.p, d.l
	p.size(20)
	p.text(left, 15, width, 10, title, "C")
	p.size(9)
	y := 30.0
	for _, r := range rows {
		p.text(122, y, 30, 5.5, r[0], "L")
		p.text(152, y, 43, 5.5, r[1], "R")
		y += 5.5
	}
	if l == &en {
		p.size(8)
		p.text(left, 29, 100, 5, to, "L")
	} else if hon == "" {
		hon = honorific(recipient)
	}
	p.size(14)
	name := recipient
	if l != &en {
		name += "　" + hon
	}
	yn := p.wrap(left, 34, 100, 7, name)
	p.f.SetLineWidth(0.4)
	p.f.Line(left, yn+0.5, left+100, yn+0.5)
	p.f.SetLineWidth(0.2)
	return max(yn+4, y+4)
}

// issuer draws the seller's block at the right from y and returns the y
// below it.
func (d drawer) issuer(y float64, is billing.Issuer) float64 {
	p := d.p
	p.size(10.5)
	y = p.wrap(122, y, 73, 5.5, is.Name)
	p.size(8.5)
	if is.Address != "" {
		y = p.wrap(122, y, 73, 4.5, is.Address)
	}
	p.text(122, y, 73, 4.5, d.l.registration+sep(d.l)+is.RegistrationNumber, "L")
	return y + 4.5
}

// amountBox draws the framed headline amount at the left.
func (d drawer) amountBox(y float64, label string, amount int64) {
	p := d.p
	p.f.SetFillColor(240, 240, 240)
	p.f.Rect(left, y, 100, 13, "FD")
	p.size(9.5)
	p.text(left+2, y, 50, 13, label, "L")
	p.size(17)
	p.text(left+48, y, 50, 13, yen(amount), "R")
}

// Columns of the lines table.
var cols = [5]float64{84, 16, 28, 18, 34}

// lineItems draws the lines table from y and returns the y below it.
func (d drawer) lineItems(y float64, in *billing.Invoice) float64 {
	p, l := d.p, d.l
	head := func(y float64) float64 {
		p.size(8.5)
		p.f.SetFillColor(225, 225, 225)
		x := left
		for i, s := range []string{l.description, l.qty, l.unitPrice, l.rate, l.amt} {
			align := "R"
			if i == 0 {
				align = "L"
			} else if i == 3 {
				align = "C"
			}
			p.box(x, y, cols[i], 7, s, align, "", true)
			x += cols[i]
		}
		return y + 7
	}
	y = head(y)
	p.size(9)
	const lh = 5.5
	for _, ln := range in.Lines {
		desc := ln.Description
		if ln.TaxRate == billing.TaxReduced {
			desc += " ※"
		}
		ls := p.lines(desc, cols[0])
		// The transaction's date, which a qualified invoice must give: a
		// line's own period where the invoice's does not cover it (a
		// proration's is in its description).
		if ln.PeriodStart != nil && ln.PeriodEnd != nil && !ln.Proration &&
			!(in.PeriodStart != nil && in.PeriodEnd != nil && ln.PeriodStart.Equal(*in.PeriodStart) && ln.PeriodEnd.Equal(*in.PeriodEnd)) {
			ls = append(ls, "("+l.span(ln.PeriodStart.In(d.loc), ln.PeriodEnd.In(d.loc))+")")
		}
		h := float64(len(ls))*lh + 1.5
		if y+h > bottom {
			p.f.AddPage()
			y = head(15)
			p.size(9)
		}
		for i, s := range ls {
			p.text(left, y+0.75+float64(i)*lh, cols[0], lh, s, "L")
		}
		x := left + cols[0]
		unit := yen(ln.UnitAmount)
		if ln.Proration {
			unit = "" // a share of the period (in the description): quantity × unit price is not the amount
		}
		for i, s := range []string{fmt.Sprint(ln.Quantity), unit, l.rateLabel(ln.TaxRate), yen(ln.Amount)} {
			align := "R"
			if i == 2 {
				align = "C"
			}
			p.text(x, y+0.75, cols[i+1], lh, s, align)
			x += cols[i+1]
		}
		y += h
		p.f.SetDrawColor(190, 190, 190)
		p.f.Line(left, y, right, y)
		p.f.SetDrawColor(0, 0, 0)
	}
	return y
}

// totals draws the subtotal, each rate's taxable amount and tax and the
// total, right-aligned from y; under the lines table (due) also the amount
// due, and the ※ legend at the left when a line is at the reduced rate. It
// returns the y below.
func (d drawer) totals(y float64, in *billing.Invoice, due bool) float64 {
	p, l := d.p, d.l
	y = p.need(y, 12+6*float64(len(in.TaxBreakdown)+4))
	y += 2
	p.size(9)
	row := func(label string, v int64) {
		p.text(right-80, y, 45, 6, label, "L")
		p.text(right-35, y, 35, 6, yen(v), "R")
		y += 6
	}
	for _, ln := range in.Lines {
		if due && ln.TaxRate == billing.TaxReduced {
			p.text(left, y, 70, 6, l.reducedLegend, "L")
			break
		}
	}
	sub := l.subtotalExcl
	if in.TaxBehavior == billing.TaxInclusive {
		sub = l.subtotalIncl
	}
	row(sub, in.Subtotal)
	p.size(8.5)
	for _, t := range in.TaxBreakdown {
		if t.Rate == billing.TaxExempt {
			p.text(right-120, y, 45, 6, l.exempt, "L")
			p.text(right-75, y, 25, 6, yen(t.TaxableAmount), "R")
		} else {
			p.text(right-120, y, 45, 6, fmt.Sprintf(l.taxable, t.Percent), "L")
			p.text(right-75, y, 25, 6, yen(t.TaxableAmount), "R")
			p.text(right-48, y, 26, 6, l.tax, "L")
			p.text(right-22, y, 22, 6, yen(t.Tax), "R")
		}
		y += 6
	}
	p.size(9)
	row(l.total, in.Total)
	if !due {
		return y
	}
	if in.StartingBalance != 0 {
		row(l.balance, in.StartingBalance)
	}
	if in.PrePaymentCreditNotes != 0 {
		row(l.credited, -in.PrePaymentCreditNotes)
	}
	p.f.Line(right-80, y, right, y)
	p.size(10.5)
	row(l.payable, in.AmountDue)
	return y
}

// payment draws the Konbini payment section from y: per voucher its amount,
// deadline and codes per store, then the stores and the payment page's QR
// code.
func (d drawer) payment(y float64, vs []*billing.Voucher, url string) {
	p, l := d.p, d.l
	need := 48.0
	for _, v := range vs {
		need += 22 + 6*float64(len(v.PaymentCodes))
	}
	y = p.need(y, min(need, bottom-15))
	p.size(10.5)
	p.f.SetFillColor(225, 225, 225)
	p.box(left, y, width, 8, l.payHeading, "L", "", true)
	y += 11
	if url != "" {
		d.qr(right-32, y, 32, url)
		p.size(8)
		p.text(right-32, y+32, 32, 5, l.payPage, "C")
	}
	const w = 138.0
	all := false
	for i, v := range vs {
		y = p.need(y, 20+6*float64(len(v.PaymentCodes)))
		p.size(9.5)
		if len(vs) > 1 {
			p.text(left, y, w, 6, fmt.Sprintf(l.part, i+1, len(vs)), "L")
			y += 6
		}
		p.text(left, y, 28, 7, l.payAmount, "L")
		p.size(12)
		p.text(left+28, y, 30, 7, yen(v.Amount), "R")
		if v.ExpiresAt != nil {
			p.size(9.5)
			p.text(left+64, y, 24, 7, l.payDeadline, "L")
			p.size(12)
			p.text(left+88, y, 50, 7, l.dateTime(v.ExpiresAt.In(d.loc)), "L")
		}
		y += 9
		p.size(8.5)
		p.f.SetFillColor(240, 240, 240)
		cw := [3]float64{38, 56, 44}
		x := left
		for j, s := range []string{l.store, l.code, l.confirmation} {
			p.box(x, y, cw[j], 6, s, "L", "1", true)
			x += cw[j]
		}
		y += 6
		p.size(10)
		for _, c := range v.PaymentCodes {
			store, ok := l.storeNames[c.Store]
			if !ok {
				store, all = l.allStores, true
			}
			conf := c.ConfirmationNumber
			if conf == "" {
				conf = "-"
			}
			x = left
			for j, s := range []string{store, c.PaymentCode, conf} {
				p.box(x, y, cw[j], 6.5, s, "L", "1", false)
				x += cw[j]
			}
			y += 6.5
		}
		if v.InstructionsURL != "" {
			p.size(7.5)
			y = p.wrap(left, y+1, w, 4, l.instructions+v.InstructionsURL)
		}
		y += 4
	}
	// The stores the codes are for; a code for no particular store (Opn
	// gives one for all) lists them all.
	seen := map[string]bool{}
	for _, v := range vs {
		for _, c := range v.PaymentCodes {
			seen[c.Store] = true
		}
	}
	var stores []string
	for _, s := range storeOrder {
		if all || seen[s] {
			stores = append(stores, l.storeNames[s])
		}
	}
	p.size(9)
	if len(stores) > 0 {
		list := strings.Join(stores, "、")
		if l == &en {
			list = strings.Join(stores, ", ")
		}
		y = p.wrap(left, y, w, 5, l.stores+list)
	}
	if url != "" {
		p.size(8)
		p.wrap(left, y+1, w, 4.5, l.payPage+sep(l)+url)
	}
}

// qr draws a QR code of s, size mm square, at (x, y), as filled rectangles:
// one per run of dark modules in a row.
func (d drawer) qr(x, y, size float64, s string) {
	code, err := qr.Encode(s, qr.M)
	if err != nil { // longer than a QR code holds: no code, the URL is printed anyway
		return
	}
	n := code.Size
	m := size / float64(n+8) // with the 4-module quiet zone on each side
	d.p.f.SetFillColor(0, 0, 0)
	for row := range n {
		for col := 0; col < n; {
			if !code.Black(col, row) {
				col++
				continue
			}
			start := col
			for col < n && code.Black(col, row) {
				col++
			}
			d.p.f.Rect(x+float64(start+4)*m, y+float64(row+4)*m, float64(col-start)*m, m, "F")
		}
	}
}
