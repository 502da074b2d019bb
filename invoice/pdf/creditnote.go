package pdf

import (
	"errors"
	"fmt"
	"time"

	"billingd/billing"
)

// CreditNoteDoc is what a credit note (適格返還請求書) PDF shows.
type CreditNoteDoc struct {
	// CreditNote is an issued credit note: its number, refund date
	// (EffectiveAt), the original invoice's number and date, the lines
	// credited with their tax rates, and the amounts and tax per rate. Its
	// IssuerName and IssuerRegistrationNumber, copied from the invoice, win
	// over Issuer's.
	CreditNote *billing.CreditNote
	// Issuer is the seller, as for InvoiceDoc.
	Issuer billing.Issuer
	// Honorific is as for InvoiceDoc.
	Honorific string
	// Language is the customer's: "en" for English, anything else Japanese.
	Language string
	// Location is the time zone of every printed date (Asia/Tokyo if nil).
	Location *time.Location
}

// CreditNote renders a qualified return invoice (適格返還請求書) on A4: the
// refund date, the original invoice's number and date (and billing period),
// what is credited, with items at the reduced rate marked, and the amount
// and consumption tax per rate. The same doc always gives the same bytes.
func CreditNote(doc CreditNoteDoc) ([]byte, error) { return creditNotePDF(doc, parsedFont) }

func creditNotePDF(doc CreditNoteDoc, font addFont) ([]byte, error) {
	cn := doc.CreditNote
	if cn == nil || cn.Number == "" || cn.EffectiveAt.IsZero() {
		return nil, errors.New("pdf: the credit note is not issued")
	}
	loc, l := location(doc.Location), labelsFor(doc.Language)
	// The lines table and totals are drawn from an invoice-shaped view.
	view := &billing.Invoice{Number: &cn.Number, TaxBehavior: cn.TaxBehavior, Subtotal: cn.Subtotal, Tax: cn.Tax, Total: cn.Total,
		TaxBreakdown: cn.TaxBreakdown, IssuerName: cn.IssuerName, IssuerRegistrationNumber: cn.IssuerRegistrationNumber}
	is := issuer(view, doc.Issuer)
	var start, end *time.Time
	reduced := false
	for _, ln := range cn.Lines {
		desc := ln.Description
		if desc == "" {
			desc = fmt.Sprintf(l.adjustment, cn.InvoiceNumber)
		}
		view.Lines = append(view.Lines, &billing.InvoiceLine{Description: desc, Quantity: ln.Quantity, UnitAmount: ln.UnitAmount, Amount: ln.Amount, TaxRate: ln.TaxRate})
		if ln.PeriodStart != nil && ln.PeriodEnd != nil {
			if start == nil || ln.PeriodStart.Before(*start) {
				start = ln.PeriodStart
			}
			if end == nil || ln.PeriodEnd.After(*end) {
				end = ln.PeriodEnd
			}
		}
		reduced = reduced || ln.TaxRate == billing.TaxReduced
	}
	date := cn.CreatedAt
	if date.IsZero() {
		date = cn.EffectiveAt
	}
	m := meta{title: l.creditNote + " " + cn.Number, author: is.Name, lang: langTag(l), date: date.In(loc)}
	return render(m, font, func(p *page) {
		d := drawer{p: p, l: l, loc: loc}
		rows := [][2]string{{l.cnNumber, cn.Number}, {l.refundDate, l.date(cn.EffectiveAt.In(loc))}, {l.origNumber, cn.InvoiceNumber}}
		if !cn.InvoiceDate.IsZero() {
			rows = append(rows, [2]string{l.origDate, l.date(cn.InvoiceDate.In(loc))})
		}
		y := d.header(l.creditNote, l.billTo, rows, cn.CustomerName, doc.Honorific)
		if start != nil {
			p.size(9)
			p.text(left, y, 100, 6, l.origPeriod+sep(l)+l.span(start.In(loc), end.In(loc)), "L")
		}
		yr := d.issuer(y, is)
		p.size(9)
		p.text(left, y+9, 100, 6, l.cnIntro, "L")
		d.amountBox(y+16, l.cnAmount, cn.Total)
		y = max(y+32, yr) + 4
		p.size(9)
		if r, ok := l.reasons[string(cn.Reason)]; ok {
			p.text(left, y, width, 5.5, l.reason+sep(l)+r, "L")
			y += 5.5
		}
		if o, ok := l.outcomes[string(cn.Outcome)]; ok {
			p.text(left, y, width, 5.5, l.outcome+sep(l)+o, "L")
			y += 5.5
		}
		if cn.Memo != "" {
			y = p.wrap(left, y, width, 5.5, l.memo+sep(l)+cn.Memo)
		}
		y = d.lineItems(y+3, view)
		ytot := y
		y = d.totals(y, view, false)
		if reduced {
			p.size(9)
			p.text(left, ytot+2, 70, 6, l.reducedLegend, "L")
		}
		if cn.Outcome == billing.OutcomeReduceAmountDue {
			p.f.Line(right-80, y, right, y)
			p.size(10.5)
			p.text(right-80, y, 45, 6, l.dueAfter, "L")
			p.text(right-35, y, 35, 6, yen(cn.AmountDueAfter), "R")
		}
	})
}
