package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/text/unicode/norm"

	"billingd/billing"
	"billingd/invoice"
	"billingd/invoice/delivery"
)

// Credit notes from the dashboard: the invoice page's form issues one
// through invoice.Service.CreateCreditNote, the function behind
// POST /v1/credit_notes, by a tax-included amount (an invoice with one tax
// rate) or for all of the invoice not yet credited; the page lists the
// invoice's credit notes with their stored PDFs.

// creditNoteReasons and creditNoteOutcomes are the form's choices; an empty
// outcome lets the service choose (reduce the amount due while something is
// due, else credit the customer's balance).
var (
	creditNoteReasons  = []billing.CreditNoteReason{billing.ReasonDuplicate, billing.ReasonFraudulent, billing.ReasonOrderChange, billing.ReasonProductUnsatisfactory}
	creditNoteOutcomes = []billing.CreditNoteOutcome{billing.OutcomeReduceAmountDue, billing.OutcomeCustomerBalance, billing.OutcomeOutOfBand}
)

// creditable reports whether credit notes can be issued against an invoice
// in its status (the service checks again).
func creditable(in *billing.Invoice) bool {
	switch in.Status {
	case billing.InvoiceOpen, billing.InvoicePaid, billing.InvoiceUncollectible:
		return true
	}
	return false
}

// creditLeft is what is left to credit on an invoice (tax included) after
// its credit notes cns: each credit note's total includes its tax, and the
// credit notes of an invoice together return at most its total.
func creditLeft(in *billing.Invoice, cns []*billing.CreditNote) int64 {
	left := in.Total
	for _, cn := range cns {
		left -= cn.Total
	}
	return max(left, 0)
}

// issueCreditNote issues the credit note the invoice page's form asks for:
// mode "amount" credits the form's amount (yen, tax included), mode "full"
// all of the invoice not yet credited (refused if an amount was typed too,
// in case the wrong choice was ticked); reason, outcome and memo are passed
// on as the API takes them.
func (s *Server) issueCreditNote(ctx context.Context, id string, r *http.Request) (*billing.CreditNote, error) {
	p := invoice.CreditNoteParams{Invoice: id, Reason: billing.CreditNoteReason(r.PostFormValue("reason")),
		Outcome: billing.CreditNoteOutcome(r.PostFormValue("outcome")), Memo: strings.TrimSpace(r.PostFormValue("memo"))}
	switch r.PostFormValue("mode") {
	case "amount":
		n, err := parseYen(r.PostFormValue("amount"))
		if err != nil {
			return nil, err
		}
		p.Amount = &n
	case "full":
		if strings.TrimSpace(r.PostFormValue("amount")) != "" {
			return nil, billing.Invalid("amount", "An amount was typed but all that is left was chosen; clear the amount or choose to credit it.")
		}
		in, err := s.Invoices.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := s.fullCredit(ctx, in, &p); err != nil {
			return nil, err
		}
	default:
		return nil, billing.Invalid("mode", "Choose an amount or all that is left to credit.")
	}
	return s.Invoices.CreateCreditNote(ctx, p)
}

// fullCredit sets p to credit all of in not yet credited: the rest of each
// line, so the credit note repeats the invoice's descriptions; or, when an
// earlier credit note was by amount or the invoice has a negative line (a
// proration credit), which a credit by line cannot balance, the amount left
// (tax included), which the service accepts on an invoice with one tax
// rate. The service checks the bounds again in its transaction.
func (s *Server) fullCredit(ctx context.Context, in *billing.Invoice, p *invoice.CreditNoteParams) error {
	if !creditable(in) {
		return billing.Errorf(billing.ECONFLICT, "Invoice %s is %s; credit notes are issued against open, paid or uncollectible invoices.", in.ID, in.Status)
	}
	var rows []struct {
		CreditNoteID string  `bun:"credit_note_id"`
		Total        int64   `bun:"total"`
		LineID       *string `bun:"invoice_line_id"`
		Amount       int64   `bun:"amount"`
	}
	err := s.DB.NewSelect().TableExpr("credit_note_lines AS l").Join("JOIN credit_notes AS c ON c.id = l.credit_note_id").
		ColumnExpr("l.credit_note_id, c.total, l.invoice_line_id, l.amount").Where("c.invoice_id = ?", in.ID).Scan(ctx, &rows)
	if err != nil {
		return err
	}
	left, byAmount := in.Total, false
	credited, seen := map[string]int64{}, map[string]bool{}
	for _, row := range rows {
		if !seen[row.CreditNoteID] {
			seen[row.CreditNoteID] = true
			left -= row.Total
		}
		if row.LineID == nil {
			byAmount = true
		} else {
			credited[*row.LineID] += row.Amount
		}
	}
	if left <= 0 {
		return billing.Errorf(billing.ECONFLICT, "Nothing is left to credit on invoice %s.", in.ID)
	}
	for _, l := range in.Lines {
		if l.Amount <= 0 {
			byAmount = true
		}
	}
	if byAmount {
		p.Amount = &left
		return nil
	}
	for _, l := range in.Lines {
		if l.Amount-credited[l.ID] > 0 {
			p.Lines = append(p.Lines, invoice.CreditNoteLineParams{InvoiceLine: l.ID})
		}
	}
	return nil
}

// parseYen reads an amount of yen typed by a person: digits, full-width or
// not, with optional thousands separators and a yen sign or 円.
func parseYen(v string) (int64, error) {
	t := strings.NewReplacer(",", "", "¥", "", "\\", "", "円", "", " ", "").Replace(norm.NFKC.String(strings.TrimSpace(v)))
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 1 || n > billing.MaxAmount {
		return 0, billing.Invalid("amount", "The amount must be a positive whole number of yen, got %q.", v)
	}
	return n, nil
}

// creditNoteDocument serves a credit note's stored PDF, the one e-mailed to
// the customer (GET /v1/credit_notes/{id}/pdf serves the same bytes).
func (s *Server) creditNoteDocument(w http.ResponseWriter, r *http.Request, x *session) {
	cn, err := s.Invoices.GetCreditNote(r.Context(), r.PathValue("id"))
	if err == nil && s.Documents == nil {
		err = billing.Errorf(billing.ENOTFOUND, "Documents are not available.")
	}
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	doc, err := s.Documents.Document(r.Context(), cn.InvoiceID, delivery.KindCreditNote+cn.ID)
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", `inline; filename="credit_note-`+fileSafe(cn.Number)+`.pdf"`)
	h.Set("X-Content-SHA256", doc.SHA256)
	h.Set("Cache-Control", "no-store")
	w.Write(doc.Content) //nolint:errcheck // a failure here is the browser going away
}

// fileSafe keeps the letters, digits, '-' and '_' of an ASCII name, for a
// file name in a header.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}
