package invoice

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/store"
	"billingd/invoice/delivery"
)

// Service manages invoices for the API and the billing runs.
type Service struct {
	DB       *store.DB
	Clock    billing.Clock
	Settings billing.Settings
	// PublicURL is the base of hosted_invoice_url links.
	PublicURL string
}

// LineParams describes one invoice line.
type LineParams struct {
	Description string          `json:"description"`
	Quantity    *int64          `json:"quantity"`
	UnitAmount  *int64          `json:"unit_amount"`
	TaxRate     billing.TaxRate `json:"tax_rate"`
	PeriodStart *time.Time      `json:"period_start"`
	PeriodEnd   *time.Time      `json:"period_end"`
}

// DraftParams describes a one-off invoice.
type DraftParams struct {
	Customer     string              `json:"customer"`
	Currency     string              `json:"currency"`
	DaysUntilDue *int                `json:"days_until_due"`
	TaxBehavior  billing.TaxBehavior `json:"tax_behavior"`
	Lines        []LineParams        `json:"lines"`
}

// maxLines caps the lines of one invoice.
const maxLines = 250

// line validates p and returns the line it describes; i is its index in the
// request, for error messages.
func (p LineParams) line(param string) (*billing.InvoiceLine, error) {
	l := &billing.InvoiceLine{ID: billing.NewID(billing.PrefixLine), Description: p.Description, Quantity: 1, TaxRate: p.TaxRate}
	if l.Description == "" || len([]rune(l.Description)) > 500 {
		return nil, billing.Invalid(param+"description", "%sdescription is required and must be at most 500 characters", param)
	}
	if p.Quantity != nil {
		l.Quantity = *p.Quantity
	}
	if l.Quantity < 1 || l.Quantity > billing.MaxQuantity {
		return nil, billing.Invalid(param+"quantity", "%squantity must be between 1 and %d, got %d", param, billing.MaxQuantity, l.Quantity)
	}
	if p.UnitAmount == nil || *p.UnitAmount < 1 || *p.UnitAmount > billing.MaxAmount {
		return nil, billing.Invalid(param+"unit_amount", "%sunit_amount is required and must be a whole number of yen between 1 and %d", param, int64(billing.MaxAmount))
	}
	l.UnitAmount = *p.UnitAmount
	if l.UnitAmount > billing.MaxAmount/l.Quantity {
		return nil, billing.Invalid(param+"quantity", "%squantity × unit_amount must not exceed %d", param, int64(billing.MaxAmount))
	}
	l.Amount = l.Quantity * l.UnitAmount
	if l.TaxRate == "" {
		l.TaxRate = billing.TaxStandard
	}
	if !l.TaxRate.Valid() {
		return nil, billing.Invalid(param+"tax_rate", "%stax_rate must be one of standard, reduced, exempt, got %q", param, l.TaxRate)
	}
	if (p.PeriodStart == nil) != (p.PeriodEnd == nil) || (p.PeriodStart != nil && !p.PeriodEnd.After(*p.PeriodStart)) {
		return nil, billing.Invalid(param+"period_end", "%speriod_start and period_end must be given together, the end after the start", param)
	}
	l.PeriodStart, l.PeriodEnd = p.PeriodStart, p.PeriodEnd
	return l, nil
}

// CreateDraft creates a one-off draft invoice, with lines if given.
func (s *Service) CreateDraft(ctx context.Context, p DraftParams) (*billing.Invoice, error) {
	if p.Customer == "" {
		return nil, billing.Invalid("customer", "customer is required")
	}
	if p.Currency != "" && p.Currency != billing.Currency {
		return nil, billing.Invalid("currency", "currency must be jpy, got %q", p.Currency)
	}
	days := s.Settings.DaysUntilDue
	if p.DaysUntilDue != nil {
		days = *p.DaysUntilDue
	}
	if days < 0 || days > 365 {
		return nil, billing.Invalid("days_until_due", "days_until_due must be between 0 and 365, got %d", days)
	}
	if p.TaxBehavior == "" {
		p.TaxBehavior = billing.TaxExclusive
	}
	if !p.TaxBehavior.Valid() {
		return nil, billing.Invalid("tax_behavior", "tax_behavior must be exclusive or inclusive, got %q", p.TaxBehavior)
	}
	if len(p.Lines) > maxLines {
		return nil, billing.Invalid("lines", "an invoice has at most %d lines", maxLines)
	}
	in := &billing.Invoice{
		ID: billing.NewID(billing.PrefixInvoice), Status: billing.InvoiceDraft, CollectionStatus: billing.CollectionNone, CustomerID: p.Customer,
		BillingReason: "manual", Currency: billing.Currency, TaxBehavior: p.TaxBehavior, DaysUntilDue: days,
		PayToken: billing.NewToken(), CreatedAt: s.Clock.Now().UTC(),
	}
	for i, lp := range p.Lines {
		l, err := lp.line(fmt.Sprintf("lines[%d].", i))
		if err != nil {
			return nil, err
		}
		l.InvoiceID, l.Position = in.ID, i
		in.Lines = append(in.Lines, l)
	}
	ComputeTotals(in, s.Settings.Rounding)
	if in.Total > billing.MaxAmount {
		return nil, billing.Invalid("lines", "the invoice total must not exceed %d", int64(billing.MaxAmount))
	}
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := customerExists(ctx, tx, p.Customer); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(in).Exec(ctx); err != nil {
			return err
		}
		if len(in.Lines) > 0 {
			if _, err := tx.NewInsert().Model(&in.Lines).Exec(ctx); err != nil {
				return err
			}
		}
		return s.record(ctx, tx, "invoice.created", in)
	})
	if err != nil {
		return nil, err
	}
	return s.decorate(in), nil
}

func customerExists(ctx context.Context, tx bun.IDB, id string) error {
	ok, err := tx.NewSelect().Model((*billing.Customer)(nil)).Where("id = ?", id).Exists(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return billing.Invalid("customer", "No such customer: '%s'", id)
	}
	return nil
}

// AddLine appends a line to a draft invoice.
func (s *Service) AddLine(ctx context.Context, id string, p LineParams) (*billing.Invoice, error) {
	l, err := p.line("")
	if err != nil {
		return nil, err
	}
	var in *billing.Invoice
	err = s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if in, err = s.load(ctx, tx, id, true); err != nil {
			return err
		}
		if in.Status != billing.InvoiceDraft {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s is %s; lines can only be added to drafts.", id, in.Status)
		}
		if len(in.Lines) >= maxLines {
			return billing.Invalid("lines", "an invoice has at most %d lines", maxLines)
		}
		l.InvoiceID, l.Position = in.ID, len(in.Lines)
		in.Lines = append(in.Lines, l)
		ComputeTotals(in, s.Settings.Rounding)
		if in.Total > billing.MaxAmount {
			return billing.Invalid("unit_amount", "the invoice total must not exceed %d", int64(billing.MaxAmount))
		}
		if _, err := tx.NewInsert().Model(l).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(in).Column("subtotal", "tax", "total", "amount_due", "amount_remaining", "tax_breakdown").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, "invoice.updated", in)
	})
	if err != nil {
		return nil, err
	}
	return s.decorate(in), nil
}

// Finalize turns a draft into an open invoice with a number, or into a paid
// one if nothing is due.
func (s *Service) Finalize(ctx context.Context, id string) (*billing.Invoice, error) {
	var in *billing.Invoice
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		if in, err = s.load(ctx, tx, id, true); err != nil {
			return err
		}
		if in.Status != billing.InvoiceDraft {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s is already %s.", id, in.Status)
		}
		if len(in.Lines) == 0 {
			return billing.Invalid("lines", "invoice %s has no lines; add at least one before finalizing", id)
		}
		cust := new(billing.Customer)
		if err := tx.NewSelect().Model(cust).Where("id = ?", in.CustomerID).Scan(ctx); err != nil {
			return err
		}
		events, err := Issue(ctx, tx, s.Settings, s.Clock.Now(), []*billing.Invoice{in}, map[string]*billing.Customer{cust.ID: cust})
		if err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(in).WherePK().Exec(ctx); err != nil {
			return err
		}
		return store.InsertEvents(ctx, tx, events...)
	})
	if err != nil {
		return nil, err
	}
	return s.decorate(in), nil
}

// Issue finalizes draft invoices in tx at now: it computes their totals,
// copies in the issuer and recipient, sets the due date, and assigns numbers
// from the series of now, reserving them all at once so the sequence's row
// lock is held briefly. An invoice with an amount due is marked for
// collection (CollectionPending): the collection worker issues its voucher
// after the transaction commits. Issue returns the events to write with the
// invoices; the caller writes the invoices themselves (insert or update).
func Issue(ctx context.Context, tx bun.IDB, s billing.Settings, now time.Time, invs []*billing.Invoice, customers map[string]*billing.Customer) ([]*billing.Event, error) {
	if len(invs) == 0 {
		return nil, nil
	}
	now = now.UTC()
	series := s.InvoiceSeries(now)
	first, err := store.NextNumbers(ctx, tx, series, int64(len(invs)))
	if err != nil {
		return nil, err
	}
	events := make([]*billing.Event, 0, len(invs))
	// Customers with a balance have it applied below; lock and re-read
	// them so concurrent finalizations never apply one balance twice.
	for _, in := range invs {
		c := customers[in.CustomerID]
		if c == nil || c.Balance == 0 {
			continue
		}
		q := tx.NewSelect().Model((*billing.Customer)(nil)).Column("balance").Where("id = ?", c.ID)
		if err := store.ForUpdateIf(q, tx).Scan(ctx, &c.Balance); err != nil {
			return nil, store.Translate(err)
		}
	}
	for i, in := range invs {
		ComputeTotals(in, s.Rounding)
		c := customers[in.CustomerID]
		if c == nil {
			return nil, fmt.Errorf("invoice %s: customer %s not loaded", in.ID, in.CustomerID)
		}
		if c.Balance != 0 {
			if err := applyBalance(ctx, tx, in, c, now); err != nil {
				return nil, err
			}
		}
		number := fmt.Sprintf("%s%06d", series, first+int64(i))
		due := s.DueDate(now, in.DaysUntilDue).UTC()
		in.Number, in.DueDate, in.FinalizedAt = &number, &due, &now
		in.CustomerName, in.CustomerEmail = c.Name, c.Email
		in.IssuerName, in.IssuerRegistrationNumber = s.Issuer.Name, s.Issuer.RegistrationNumber
		in.Status, in.CollectionStatus = billing.InvoiceOpen, billing.CollectionPending
		if in.AmountDue <= 0 {
			in.Status, in.PaidAt, in.CollectionStatus = billing.InvoicePaid, &now, billing.CollectionNone
		}
		ev, err := billing.NewEvent(now, "invoice.finalized", in.ID, in)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
		if in.Status == billing.InvoicePaid {
			if ev, err = billing.NewEvent(now, "invoice.paid", in.ID, in); err != nil {
				return nil, err
			}
			events = append(events, ev)
		}
	}
	return events, nil
}

// Void voids an open or uncollectible invoice: nothing is owed any more, the
// number stays used, and the live voucher is canceled. The customer balance
// the invoice took at finalization (a credit used, or a debt carried into
// it) goes back to the balance, as with Stripe. An invoice already partly
// paid is not voided: a credit note corrects it.
func (s *Service) Void(ctx context.Context, id string) (*billing.Invoice, error) {
	return s.transition(ctx, id, "invoice.voided", func(tx bun.Tx, in *billing.Invoice, now time.Time) error {
		if in.Status != billing.InvoiceOpen && in.Status != billing.InvoiceUncollectible {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s is %s; only open or uncollectible invoices can be voided.", id, in.Status)
		}
		if in.AmountPaid > 0 {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s has ¥%d paid; issue a credit note instead of voiding it.", id, in.AmountPaid)
		}
		in.Status, in.VoidedAt = billing.InvoiceVoid, &now
		// The collection worker cancels the live voucher, where the provider allows.
		in.CollectionStatus = billing.CollectionCanceling
		if in.StartingBalance != 0 {
			_, err := AdjustBalance(ctx, tx, in.CustomerID, in.StartingBalance, "invoice_voided", &in.ID,
				fmt.Sprintf("Balance of ¥%d applied to invoice %s returned when it was voided.", in.StartingBalance, num(in)), now)
			return err
		}
		return nil
	})
}

// MarkUncollectible records that an open invoice is not expected to be paid.
// It can still be paid, or voided.
func (s *Service) MarkUncollectible(ctx context.Context, id string) (*billing.Invoice, error) {
	return s.transition(ctx, id, "invoice.marked_uncollectible", func(_ bun.Tx, in *billing.Invoice, now time.Time) error {
		if in.Status != billing.InvoiceOpen {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s is %s; only open invoices can be marked uncollectible.", id, in.Status)
		}
		in.Status, in.MarkedUncollectibleAt = billing.InvoiceUncollectible, &now
		return nil
	})
}

func (s *Service) transition(ctx context.Context, id, event string, apply func(bun.Tx, *billing.Invoice, time.Time) error) (*billing.Invoice, error) {
	var in *billing.Invoice
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		if in, err = s.load(ctx, tx, id, true); err != nil {
			return err
		}
		wasOpen := in.Status == billing.InvoiceOpen
		now := s.Clock.Now().UTC()
		if err := apply(tx, in, now); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(in).WherePK().Exec(ctx); err != nil {
			return err
		}
		ev, err := billing.NewEvent(now, event, in.ID, in)
		if err != nil {
			return err
		}
		if in.Status == billing.InvoiceVoid && wasOpen {
			// The customer was asked to pay: tell them they need not.
			if err := delivery.Enqueue(ctx, tx, mail.KindVoided, in.ID, in.ID, now); err != nil {
				return err
			}
		}
		return store.InsertEvents(ctx, tx, ev)
	})
	if err != nil {
		return nil, err
	}
	return s.decorate(in), nil
}

func (s *Service) record(ctx context.Context, tx bun.IDB, typ string, in *billing.Invoice) error {
	ev, err := billing.NewEvent(s.Clock.Now().UTC(), typ, in.ID, in)
	if err != nil {
		return err
	}
	return store.InsertEvents(ctx, tx, ev)
}

// load reads an invoice with its lines, locking it when forUpdate is set.
func (s *Service) load(ctx context.Context, db bun.IDB, id string, forUpdate bool) (*billing.Invoice, error) {
	in := new(billing.Invoice)
	q := db.NewSelect().Model(in).Where("id = ?", id)
	if forUpdate {
		q = s.DB.ForUpdate(q)
	}
	if err := q.Scan(ctx); err != nil {
		if billing.ErrorCode(store.Translate(err)) == billing.ENOTFOUND {
			return nil, billing.NotFound("invoice", id)
		}
		return nil, err
	}
	if err := db.NewSelect().Model(&in.Lines).Where("invoice_id = ?", id).Order("position").Scan(ctx); err != nil {
		return nil, err
	}
	return in, nil
}

// Get returns an invoice with its lines and current voucher.
func (s *Service) Get(ctx context.Context, id string) (*billing.Invoice, error) {
	in, err := s.load(ctx, s.DB, id, false)
	if err != nil {
		return nil, store.Translate(err)
	}
	if err := s.attachVouchers(ctx, []*billing.Invoice{in}); err != nil {
		return nil, err
	}
	return s.decorate(in), nil
}

// Vouchers returns all vouchers of an invoice, oldest first.
func (s *Service) Vouchers(ctx context.Context, id string) ([]*billing.Voucher, error) {
	if ok, err := s.DB.NewSelect().Model((*billing.Invoice)(nil)).Where("id = ?", id).Exists(ctx); err != nil {
		return nil, store.Translate(err)
	} else if !ok {
		return nil, billing.NotFound("invoice", id)
	}
	var vs []*billing.Voucher
	err := s.DB.NewSelect().Model(&vs).Where("invoice_id = ?", id).Order("id").Scan(ctx)
	return vs, store.Translate(err)
}

// attachVouchers sets each invoice's Collection: its live voucher, or the
// latest one if none is live.
func (s *Service) attachVouchers(ctx context.Context, invs []*billing.Invoice) error {
	ids := make([]string, len(invs))
	byID := make(map[string]*billing.Invoice, len(invs))
	for i, in := range invs {
		ids[i], byID[in.ID] = in.ID, in
	}
	var vs []*billing.Voucher
	if err := s.DB.NewSelect().Model(&vs).Where("invoice_id IN (?)", bun.In(ids)).Order("id").Scan(ctx); err != nil {
		return store.Translate(err)
	}
	for _, v := range vs {
		in := byID[v.InvoiceID]
		if in.Collection == nil || in.Collection.Status != "pending" || v.Status == "pending" {
			in.Collection = v
		}
	}
	return nil
}

// Filter narrows an invoice list. Zero fields do not filter.
type Filter struct {
	Customer     string
	Subscription string
	Status       billing.InvoiceStatus
	CreatedGTE   *time.Time
	CreatedLTE   *time.Time
	TotalGTE     *int64
	TotalLTE     *int64
}

// List returns one page of invoices, newest first, with their lines.
func (s *Service) List(ctx context.Context, f Filter, p store.Page) ([]*billing.Invoice, bool, error) {
	q := s.DB.NewSelect().Model((*billing.Invoice)(nil))
	if f.Customer != "" {
		q = q.Where("customer_id = ?", f.Customer)
	}
	if f.Subscription != "" {
		q = q.Where("subscription_id = ?", f.Subscription)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.CreatedGTE != nil {
		q = q.Where("created_at >= ?", f.CreatedGTE.UTC())
	}
	if f.CreatedLTE != nil {
		q = q.Where("created_at <= ?", f.CreatedLTE.UTC())
	}
	if f.TotalGTE != nil {
		q = q.Where("total >= ?", *f.TotalGTE)
	}
	if f.TotalLTE != nil {
		q = q.Where("total <= ?", *f.TotalLTE)
	}
	invs, more, err := store.List[*billing.Invoice](ctx, q, "id", p)
	if err != nil || len(invs) == 0 {
		return invs, more, err
	}
	byID := make(map[string]*billing.Invoice, len(invs))
	ids := make([]string, len(invs))
	for i, in := range invs {
		byID[in.ID], ids[i] = in, in.ID
		s.decorate(in)
	}
	var lines []*billing.InvoiceLine
	if err := s.DB.NewSelect().Model(&lines).Where("invoice_id IN (?)", bun.In(ids)).Order("invoice_id", "position").Scan(ctx); err != nil {
		return nil, false, store.Translate(err)
	}
	for _, l := range lines {
		in := byID[l.InvoiceID]
		in.Lines = append(in.Lines, l)
	}
	return invs, more, s.attachVouchers(ctx, invs)
}

// decorate fills the fields that are not stored.
func (s *Service) decorate(in *billing.Invoice) *billing.Invoice {
	in.HostedInvoiceURL = s.PublicURL + "/pay/" + in.PayToken
	if in.Lines == nil {
		in.Lines = []*billing.InvoiceLine{}
	}
	return in
}

// applyBalance applies the customer's balance to an invoice being finalized:
// an amount carried over is added to what is due, a credit reduces it (never
// below zero; the rest of the credit stays on the balance).
func applyBalance(ctx context.Context, tx bun.IDB, in *billing.Invoice, c *billing.Customer, now time.Time) error {
	applied := c.Balance
	if applied < 0 && -applied > in.Total {
		applied = -in.Total
	}
	in.StartingBalance = applied
	in.AmountDue = in.Total + applied
	in.AmountRemaining = in.AmountDue - in.AmountPaid
	bal, err := AdjustBalance(ctx, tx, c.ID, -applied, "applied_to_invoice", &in.ID, "Applied to invoice "+in.ID, now)
	c.Balance = bal
	return err
}
