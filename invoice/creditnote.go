package invoice

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/outbox"
	"billingd/billing/store"
	"billingd/invoice/delivery"
)

// TaskCancelVoucher is the outbox kind that cancels, at the provider, a
// voucher replaced after a credit note lowered its invoice's amount due; the
// key is the voucher's id. The collection package handles it.
const TaskCancelVoucher = "voucher_cancel"

// Failure codes of vouchers canceled because what their invoice still owes
// changed under them: a credit note lowered the amount due, or an old slip
// was paid and the live vouchers asked more than was left. A replaced
// voucher does not count as one of the vouchers the dunning policy allows,
// and only a payment can still change it (the provider may not cancel it).
const (
	VoucherReplaced             = "replaced_by_credit_note"
	VoucherReplacedAfterPayment = "replaced_after_payment"
)

// ReplacedCodes lists the failure codes of replaced vouchers.
var ReplacedCodes = []string{VoucherReplaced, VoucherReplacedAfterPayment}

// Replaced reports whether a voucher's failure code says it was replaced.
func Replaced(failureCode string) bool { return slices.Contains(ReplacedCodes, failureCode) }

// CreditNoteLineParams credits part of an invoice line: a quantity of it
// (at its unit amount), an amount of it, or, with neither, all of it that is
// not yet credited. Amounts are in the invoice's tax behavior.
type CreditNoteLineParams struct {
	InvoiceLine string `json:"invoice_line"`
	Quantity    *int64 `json:"quantity"`
	Amount      *int64 `json:"amount"`
}

// CreditNoteParams describes a credit note against a finalized invoice: by
// lines, or by an amount (tax included) on an invoice with one tax rate.
type CreditNoteParams struct {
	Invoice string                   `json:"invoice"`
	Lines   []CreditNoteLineParams   `json:"lines"`
	Amount  *int64                   `json:"amount"`
	Reason  billing.CreditNoteReason `json:"reason"`
	// Outcome defaults to reduce_amount_due for an invoice with an amount
	// remaining, customer_balance for a paid one.
	Outcome billing.CreditNoteOutcome `json:"outcome"`
	Memo    string                    `json:"memo"`
	// EffectiveAt is the refund date printed on the credit note (default:
	// now); between the invoice's finalization and now.
	EffectiveAt *time.Time `json:"effective_at"`
}

// CreditNoteFilter narrows a credit note list. Zero fields do not filter.
type CreditNoteFilter struct {
	Invoice  string
	Customer string
}

// CreateCreditNote issues a credit note against a finalized invoice and
// applies its outcome in the same transaction: the invoice's amount due is
// lowered (its live vouchers are canceled and the collector issues new ones
// for the new amount, or the invoice closes if nothing is left), the
// customer's balance is credited, or a refund made elsewhere is recorded.
// The credit note's number is taken last, so a rollback leaves no gap; its
// e-mail (with the PDF) is queued with it.
func (s *Service) CreateCreditNote(ctx context.Context, p CreditNoteParams) (*billing.CreditNote, error) {
	if p.Invoice == "" {
		return nil, billing.Invalid("invoice", "invoice is required")
	}
	if p.Reason != "" && !p.Reason.Valid() {
		return nil, billing.Invalid("reason", "reason must be one of duplicate, fraudulent, order_change, product_unsatisfactory, got %q", p.Reason)
	}
	if p.Outcome != "" && !p.Outcome.Valid() {
		return nil, billing.Invalid("outcome", "outcome must be one of reduce_amount_due, customer_balance, out_of_band, got %q", p.Outcome)
	}
	if len([]rune(p.Memo)) > 500 {
		return nil, billing.Invalid("memo", "memo must be at most 500 characters")
	}
	var cn *billing.CreditNote
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		now := s.Clock.Now().UTC()
		in, err := s.load(ctx, tx, p.Invoice, true)
		if err != nil {
			if billing.ErrorCode(err) == billing.ENOTFOUND {
				return billing.Invalid("invoice", "No such invoice: '%s'", p.Invoice)
			}
			return err
		}
		switch in.Status {
		case billing.InvoiceOpen, billing.InvoicePaid, billing.InvoiceUncollectible:
		default:
			return billing.Errorf(billing.ECONFLICT, "Invoice %s is %s; credit notes are issued against open, paid or uncollectible invoices.", in.ID, in.Status)
		}
		prev, err := creditNotesOf(ctx, tx, in.ID)
		if err != nil {
			return err
		}
		if cn, err = buildCreditNote(in, prev, p, s.Settings.Rounding); err != nil {
			return err
		}
		cn.EffectiveAt = now
		if p.EffectiveAt != nil {
			at := p.EffectiveAt.UTC().Truncate(time.Second)
			if at.After(now) || at.Before(in.FinalizedAt.Truncate(time.Second)) {
				return billing.Invalid("effective_at", "effective_at must be between the invoice's finalization and now")
			}
			cn.EffectiveAt = at
		}
		cn.CreatedAt = now
		if cn.Outcome == "" {
			cn.Outcome = billing.OutcomeCustomerBalance
			if in.Status != billing.InvoicePaid && in.AmountRemaining > 0 {
				cn.Outcome = billing.OutcomeReduceAmountDue
			}
		}
		cn.AmountDueBefore = in.AmountRemaining
		events, err := s.applyCreditNote(ctx, tx, in, cn, now)
		if err != nil {
			return err
		}
		cn.AmountDueAfter = in.AmountRemaining
		first, err := store.NextNumbers(ctx, tx, s.Settings.CreditNoteSeries(now), 1)
		if err != nil {
			return err
		}
		cn.Number = fmt.Sprintf("%s%06d", s.Settings.CreditNoteSeries(now), first)
		if _, err := tx.NewInsert().Model(cn).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&cn.Lines).Exec(ctx); err != nil {
			return err
		}
		ev, err := billing.NewEvent(now, "credit_note.created", cn.ID, cn)
		if err != nil {
			return err
		}
		if err := delivery.Enqueue(ctx, tx, mail.KindCreditNote, cn.ID, in.ID, now); err != nil {
			return err
		}
		return store.InsertEvents(ctx, tx, append([]*billing.Event{ev}, events...)...)
	})
	if err != nil {
		return nil, err
	}
	return cn, nil
}

// applyCreditNote carries out cn's outcome on in (locked) and returns the
// events to record with it.
func (s *Service) applyCreditNote(ctx context.Context, tx bun.Tx, in *billing.Invoice, cn *billing.CreditNote, now time.Time) ([]*billing.Event, error) {
	cols := []string{"pre_payment_credit_notes_amount", "post_payment_credit_notes_amount"}
	switch cn.Outcome {
	case billing.OutcomeReduceAmountDue:
		if in.Status == billing.InvoicePaid || in.AmountRemaining <= 0 {
			return nil, billing.Invalid("outcome", "invoice %s has nothing left to pay; credit it to the customer's balance (customer_balance) or record a refund (out_of_band)", num(in))
		}
		if cn.Total > in.AmountRemaining {
			return nil, billing.Invalid("outcome", "the credit note's total ¥%d exceeds the ¥%d still due on invoice %s; credit the rest to the customer's balance in a second credit note", cn.Total, in.AmountRemaining, num(in))
		}
		in.PrePaymentCreditNotes += cn.Total
		in.AmountDue -= cn.Total
		in.AmountRemaining -= cn.Total
		cols = append(cols, "amount_due", "amount_remaining", "status", "paid_at", "collection_status", "collection_error")
		replaced, err := ReplaceVouchers(ctx, tx, in, VoucherReplaced, "Replaced after a credit note changed the amount due.", now)
		if err != nil {
			return nil, err
		}
		switch {
		case in.AmountRemaining == 0:
			in.Status, in.PaidAt, in.CollectionStatus, in.CollectionError = billing.InvoicePaid, &now, billing.CollectionNone, ""
		case in.Status == billing.InvoiceOpen && (replaced || in.CollectionStatus == billing.CollectionPending || in.CollectionStatus == billing.CollectionActionRequired):
			// The collector issues vouchers for the new amount (or carries
			// an amount below the provider's minimum to the balance).
			in.CollectionStatus, in.CollectionError = billing.CollectionPending, ""
		case replaced:
			in.CollectionStatus = billing.CollectionNone
		}
	case billing.OutcomeCustomerBalance:
		in.PostPaymentCreditNotes += cn.Total
		if _, err := AdjustBalance(ctx, tx, in.CustomerID, -cn.Total, "credit_note", &in.ID,
			fmt.Sprintf("Credit note on invoice %s.", num(in)), now); err != nil {
			return nil, err
		}
	case billing.OutcomeOutOfBand:
		in.PostPaymentCreditNotes += cn.Total
	}
	if _, err := tx.NewUpdate().Model(in).Column(cols...).WherePK().Exec(ctx); err != nil {
		return nil, err
	}
	var events []*billing.Event
	ev, err := billing.NewEvent(now, "invoice.updated", in.ID, in)
	if err != nil {
		return nil, err
	}
	events = append(events, ev)
	if in.Status == billing.InvoicePaid && cn.Outcome == billing.OutcomeReduceAmountDue {
		if ev, err = billing.NewEvent(now, "invoice.paid", in.ID, in); err != nil {
			return nil, err
		}
		events = append(events, ev)
		sev, err := ReactivateSubscription(ctx, tx, in, now)
		if err != nil {
			return nil, err
		}
		if sev != nil {
			events = append(events, sev)
		}
	}
	return events, nil
}

// ReplaceVouchers settles the live vouchers of an invoice whose amount still
// owed changed, with code (VoucherReplaced or VoucherReplacedAfterPayment)
// and message: they are canceled here at once (so new ones can be issued)
// and at the provider by an outbox task. It reports whether there were any.
func ReplaceVouchers(ctx context.Context, tx bun.Tx, in *billing.Invoice, code, message string, now time.Time) (bool, error) {
	var vs []*billing.Voucher
	if err := store.ForUpdateIf(tx.NewSelect().Model(&vs).Where("invoice_id = ?", in.ID).Where("status = 'pending'"), tx).Scan(ctx); err != nil {
		return false, err
	}
	for _, v := range vs {
		// next_attempt_at stays: a creation still in flight holds its lease,
		// and the cancel task waits for it before looking the attempt up.
		v.Status, v.FailureCode, v.FailureMessage, v.UpdatedAt = "canceled", code, message, now
		if _, err := tx.NewUpdate().Model(v).Column("status", "failure_code", "failure_message", "updated_at").WherePK().Exec(ctx); err != nil {
			return false, err
		}
		if v.Attempts > 0 { // the provider may know it
			if err := outbox.Enqueue(ctx, tx, TaskCancelVoucher, v.ID, in.ID, now); err != nil {
				return false, err
			}
		}
		ev, err := billing.NewEvent(now, "invoice.voucher_canceled", in.ID, v)
		if err != nil {
			return false, err
		}
		if err := store.InsertEvents(ctx, tx, ev); err != nil {
			return false, err
		}
	}
	return len(vs) > 0, nil
}

// ReactivateSubscription makes the past-due or unpaid subscription of a
// settled invoice active again once none of its invoices is overdue (open
// with no voucher left), and returns the subscription.updated event, or nil
// if nothing changed.
func ReactivateSubscription(ctx context.Context, tx bun.IDB, in *billing.Invoice, now time.Time) (*billing.Event, error) {
	if in.SubscriptionID == nil {
		return nil, nil
	}
	sub := new(billing.Subscription)
	res, err := tx.NewUpdate().Model(sub).Set("status = ?", billing.SubscriptionActive).
		Where("id = ?", *in.SubscriptionID).Where("status IN (?)", bun.In([]billing.SubscriptionStatus{billing.SubscriptionPastDue, billing.SubscriptionUnpaid})).
		Where("NOT EXISTS (SELECT 1 FROM invoices WHERE subscription_id = ? AND status = ? AND id <> ? AND collection_status = ?)",
			*in.SubscriptionID, billing.InvoiceOpen, in.ID, billing.CollectionNone).Returning("*").Exec(ctx)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, nil
	}
	return billing.NewEvent(now, "subscription.updated", sub.ID, sub)
}

// creditNotesOf returns the credit notes of an invoice with their lines.
func creditNotesOf(ctx context.Context, db bun.IDB, invoiceID string) ([]*billing.CreditNote, error) {
	var cns []*billing.CreditNote
	if err := db.NewSelect().Model(&cns).Where("invoice_id = ?", invoiceID).Order("id").Scan(ctx); err != nil {
		return nil, err
	}
	return cns, attachCreditNoteLines(ctx, db, cns)
}

func attachCreditNoteLines(ctx context.Context, db bun.IDB, cns []*billing.CreditNote) error {
	if len(cns) == 0 {
		return nil
	}
	byID := make(map[string]*billing.CreditNote, len(cns))
	ids := make([]string, len(cns))
	for i, cn := range cns {
		byID[cn.ID], ids[i] = cn, cn.ID
		cn.Lines = nil
	}
	var lines []*billing.CreditNoteLine
	if err := db.NewSelect().Model(&lines).Where("credit_note_id IN (?)", bun.In(ids)).Order("credit_note_id", "position").Scan(ctx); err != nil {
		return err
	}
	for _, l := range lines {
		cn := byID[l.CreditNoteID]
		cn.Lines = append(cn.Lines, l)
	}
	return nil
}

// GetCreditNote returns a credit note with its lines.
func (s *Service) GetCreditNote(ctx context.Context, id string) (*billing.CreditNote, error) {
	cn := new(billing.CreditNote)
	if err := s.DB.NewSelect().Model(cn).Where("id = ?", id).Scan(ctx); err != nil {
		if billing.ErrorCode(store.Translate(err)) == billing.ENOTFOUND {
			return nil, billing.NotFound("credit_note", id)
		}
		return nil, store.Translate(err)
	}
	return cn, store.Translate(attachCreditNoteLines(ctx, s.DB, []*billing.CreditNote{cn}))
}

// ListCreditNotes returns one page of credit notes, newest first, with their
// lines.
func (s *Service) ListCreditNotes(ctx context.Context, f CreditNoteFilter, p store.Page) ([]*billing.CreditNote, bool, error) {
	q := s.DB.NewSelect().Model((*billing.CreditNote)(nil))
	if f.Invoice != "" {
		q = q.Where("invoice_id = ?", f.Invoice)
	}
	if f.Customer != "" {
		q = q.Where("customer_id = ?", f.Customer)
	}
	cns, more, err := store.List[*billing.CreditNote](ctx, q, "id", p)
	if err != nil {
		return nil, false, err
	}
	return cns, more, store.Translate(attachCreditNoteLines(ctx, s.DB, cns))
}

// rateAmounts are one tax rate's amounts: net of tax and the tax.
type rateAmounts struct{ net, tax int64 }

// buildCreditNote computes a credit note for in from p, given the credit
// notes already issued against it: its lines, and its consumption tax once
// per rate with mode. Nothing may be credited beyond what was invoiced: per
// invoice line its amount, per rate its net amount and its tax. When a
// credit note takes all that is left of a rate, its tax is what is left of
// that rate's tax, so that crediting an invoice in parts returns exactly
// its tax whatever the rounding.
func buildCreditNote(in *billing.Invoice, prev []*billing.CreditNote, p CreditNoteParams, mode billing.Rounding) (*billing.CreditNote, error) {
	cn := &billing.CreditNote{
		ID: billing.NewID(billing.PrefixCreditNote), InvoiceID: in.ID, CustomerID: in.CustomerID, Status: "issued",
		Reason: p.Reason, Outcome: p.Outcome, Memo: p.Memo, Currency: in.Currency, TaxBehavior: in.TaxBehavior,
		InvoiceNumber: num(in), CustomerName: in.CustomerName, CustomerEmail: in.CustomerEmail,
		IssuerName: in.IssuerName, IssuerRegistrationNumber: in.IssuerRegistrationNumber,
	}
	if in.FinalizedAt != nil {
		cn.InvoiceDate = *in.FinalizedAt
	}
	// What earlier credit notes took, per invoice line and per rate.
	lineCredited := map[string]int64{}
	left := map[billing.TaxRate]rateAmounts{}
	for _, t := range in.TaxBreakdown {
		left[t.Rate] = rateAmounts{t.TaxableAmount, t.Tax}
	}
	for _, c := range prev {
		for _, l := range c.Lines {
			if l.InvoiceLineID != nil {
				lineCredited[*l.InvoiceLineID] += l.Amount
			}
		}
		for _, t := range c.TaxBreakdown {
			r := left[t.Rate]
			left[t.Rate] = rateAmounts{r.net - t.TaxableAmount, r.tax - t.Tax}
		}
	}
	switch {
	case len(p.Lines) > 0 && p.Amount != nil:
		return nil, billing.Invalid("amount", "give either lines or amount, not both")
	case len(p.Lines) > maxLines:
		return nil, billing.Invalid("lines", "a credit note has at most %d lines", maxLines)
	case len(p.Lines) > 0:
		byID := map[string]*billing.InvoiceLine{}
		for _, l := range in.Lines {
			byID[l.ID] = l
		}
		seen := map[string]bool{}
		for i, lp := range p.Lines {
			param := fmt.Sprintf("lines[%d].", i)
			il := byID[lp.InvoiceLine]
			if il == nil {
				return nil, billing.Invalid(param+"invoice_line", "%sinvoice_line must be a line of invoice %s, got %q", param, num(in), lp.InvoiceLine)
			}
			if seen[il.ID] {
				return nil, billing.Invalid(param+"invoice_line", "%sinvoice_line %s appears twice", param, il.ID)
			}
			seen[il.ID] = true
			remaining := il.Amount - lineCredited[il.ID]
			ln := &billing.CreditNoteLine{ID: billing.NewID(billing.PrefixCreditNoteLine), CreditNoteID: cn.ID, InvoiceLineID: &il.ID, Position: i,
				Description: il.Description, TaxRate: il.TaxRate, PeriodStart: il.PeriodStart, PeriodEnd: il.PeriodEnd}
			switch {
			case lp.Quantity != nil && lp.Amount != nil:
				return nil, billing.Invalid(param+"amount", "%s: give either quantity or amount, not both", param+"invoice_line")
			case lp.Quantity != nil:
				if *lp.Quantity < 1 || *lp.Quantity > il.Quantity {
					return nil, billing.Invalid(param+"quantity", "%squantity must be between 1 and the line's quantity %d, got %d", param, il.Quantity, *lp.Quantity)
				}
				ln.Quantity, ln.UnitAmount, ln.Amount = *lp.Quantity, il.UnitAmount, *lp.Quantity*il.UnitAmount
			case lp.Amount != nil:
				if *lp.Amount < 1 {
					return nil, billing.Invalid(param+"amount", "%samount must be a positive whole number of yen, got %d", param, *lp.Amount)
				}
				ln.Quantity, ln.UnitAmount, ln.Amount = 1, *lp.Amount, *lp.Amount
			case remaining == il.Amount:
				ln.Quantity, ln.UnitAmount, ln.Amount = il.Quantity, il.UnitAmount, il.Amount
			default:
				ln.Quantity, ln.UnitAmount, ln.Amount = 1, remaining, remaining
			}
			if ln.Amount > remaining || remaining <= 0 {
				return nil, billing.Invalid(param+"amount", "%s: ¥%d of invoice line %s is left to credit, asked for ¥%d", param+"invoice_line", max(remaining, 0), il.ID, ln.Amount)
			}
			cn.Lines = append(cn.Lines, ln)
		}
	case p.Amount != nil:
		if *p.Amount < 1 || *p.Amount > billing.MaxAmount {
			return nil, billing.Invalid("amount", "amount must be a positive whole number of yen (tax included), got %d", *p.Amount)
		}
		if len(in.TaxBreakdown) != 1 {
			return nil, billing.Invalid("amount", "invoice %s has %d tax rates; credit it by lines so that the tax of each rate is known", num(in), len(in.TaxBreakdown))
		}
		// The amount includes tax, whatever the invoice's behavior.
		cn.TaxBehavior = billing.TaxInclusive
		// The original transaction's period (the invoice's, or its lines'),
		// which the credit note must show.
		start, end := in.PeriodStart, in.PeriodEnd
		for _, il := range in.Lines {
			if in.PeriodStart != nil || il.PeriodStart == nil || il.PeriodEnd == nil {
				continue
			}
			if start == nil || il.PeriodStart.Before(*start) {
				start = il.PeriodStart
			}
			if end == nil || il.PeriodEnd.After(*end) {
				end = il.PeriodEnd
			}
		}
		cn.Lines = []*billing.CreditNoteLine{{ID: billing.NewID(billing.PrefixCreditNoteLine), CreditNoteID: cn.ID, Quantity: 1,
			UnitAmount: *p.Amount, Amount: *p.Amount, TaxRate: in.TaxBreakdown[0].Rate, PeriodStart: start, PeriodEnd: end}}
	default:
		return nil, billing.Invalid("lines", "lines or amount is required")
	}

	// Tax once per rate on the credit note, then bounded by what is left.
	view := &billing.Invoice{TaxBehavior: cn.TaxBehavior}
	for _, l := range cn.Lines {
		view.Lines = append(view.Lines, &billing.InvoiceLine{Amount: l.Amount, TaxRate: l.TaxRate})
	}
	ComputeTotals(view, mode)
	cn.Subtotal, cn.Tax = view.Subtotal, 0
	for _, t := range view.TaxBreakdown {
		l, ok := left[t.Rate]
		base := t.TaxableAmount // exclusive: the net amount the lines credit
		room := l.net
		if cn.TaxBehavior == billing.TaxInclusive {
			base, room = t.TaxableAmount+t.Tax, l.net+l.tax // the gross amount
		}
		if !ok || base > room {
			return nil, billing.Invalid("amount", "only ¥%d at the %d%% rate is left to credit on invoice %s (%s), asked for ¥%d",
				max(room, 0), t.Percent, num(in), taxWord(cn.TaxBehavior), base)
		}
		tax := min(t.Tax, max(l.tax, 0))
		if base == room {
			tax = max(l.tax, 0) // the rest of the rate: the rest of its tax
		}
		t.Tax = tax
		if cn.TaxBehavior == billing.TaxInclusive {
			t.TaxableAmount = base - tax
		}
		cn.Tax += tax
		cn.TaxBreakdown = append(cn.TaxBreakdown, t)
	}
	cn.Total = cn.Subtotal
	if cn.TaxBehavior != billing.TaxInclusive {
		cn.Total += cn.Tax
	}
	if cn.Total <= 0 {
		return nil, billing.Invalid("amount", "the credit note's total must be positive")
	}
	// Rate by rate is not enough when a rate is negative on the invoice (a
	// plan change between rates): the credit notes together never take
	// more than the invoice's total.
	rest := in.Total
	for _, c := range prev {
		rest -= c.Total
	}
	if cn.Total > rest {
		return nil, billing.Invalid("amount", "only ¥%d of invoice %s's total is left to credit, asked for ¥%d", max(rest, 0), num(in), cn.Total)
	}
	return cn, nil
}

func taxWord(b billing.TaxBehavior) string {
	if b == billing.TaxInclusive {
		return "tax included"
	}
	return "excluding tax"
}

func num(in *billing.Invoice) string {
	if in.Number != nil {
		return *in.Number
	}
	return in.ID
}
