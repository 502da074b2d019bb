// Package delivery brings invoices to customers: the PDFs as issued (kept
// with their SHA-256, never regenerated; credit notes' too), the e-mails
// (invoice, reminders on the dunning policy's schedule, reissued voucher,
// receipt, void notice, credit note, overdue notice) sent from the outbox,
// and the customer's payment page.
package delivery

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/outbox"
	"billingd/billing/store"
	"billingd/invoice/pdf"
)

// TaskEmail is the outbox kind of e-mails; the task key is "<mail kind>:<id>"
// (an invoice id, or a voucher id for reminders and reissues).
const TaskEmail = "email"

// EmailKey returns the outbox key of an e-mail of kind about id.
func EmailKey(kind mail.Kind, id string) string { return string(kind) + ":" + id }

// Service renders and sends customer documents.
type Service struct {
	DB        *store.DB
	Clock     billing.Clock
	Settings  billing.Settings
	Sender    mail.Sender
	From      mail.Address
	PublicURL string
	Logger    *slog.Logger
	// ReminderDays is how many days before a voucher expires the reminder
	// goes out (default 3), when Dunning has no reminder schedule.
	ReminderDays int
	// Dunning is the operator's dunning policy: its reminder schedule, which
	// a subscription's dunning field may override.
	Dunning billing.DunningPolicy
	// Simulate, set in sandbox mode, drives a voucher at the sandbox
	// (action: mark_as_paid, mark_as_failed, expire) and applies the result.
	Simulate func(ctx context.Context, providerChargeID, action string) error
}

// Document returns the stored PDF of kind ("invoice" or "receipt") for an
// invoice, rendering and storing it on first use. Concurrent first uses
// store one document: the first stored wins and is what everyone gets.
func (s *Service) Document(ctx context.Context, invoiceID, kind string) (*billing.Document, error) {
	doc := new(billing.Document)
	err := s.DB.NewSelect().Model(doc).Where("invoice_id = ?", invoiceID).Where("kind = ?", kind).Scan(ctx)
	if err == nil {
		return doc, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, store.Translate(err)
	}
	in, cust, vs, err := s.load(ctx, invoiceID)
	if err != nil {
		return nil, err
	}
	var content []byte
	if cnID, ok := strings.CutPrefix(kind, KindCreditNote); ok {
		cn, err := s.creditNote(ctx, cnID)
		if err != nil {
			return nil, err
		}
		if cn.InvoiceID != in.ID {
			return nil, billing.NotFound("credit_note", cnID)
		}
		content, err = pdf.CreditNote(pdf.CreditNoteDoc{CreditNote: cn, Issuer: s.Settings.Issuer, Language: cust.Language, Location: s.Settings.Location})
		if err != nil {
			return nil, err
		}
		return s.store(ctx, in.ID, kind, content)
	}
	switch kind {
	case "invoice":
		if in.Status == billing.InvoiceDraft {
			return nil, billing.Errorf(billing.ECONFLICT, "Invoice %s is a draft; its document is issued at finalization.", in.ID)
		}
		if in.CollectionStatus == billing.CollectionPending || in.Status == billing.InvoiceOpen && in.CollectionStatus == billing.CollectionActive && !allIssued(vs) {
			return nil, billing.Errorf(billing.ECONFLICT, "Invoice %s is being issued with its payment code; retry in a moment.", in.ID)
		}
		if in.Status == billing.InvoiceOpen && in.CollectionStatus == billing.CollectionActionRequired {
			// Stored once and for good: not without the payment code the
			// customer needs.
			return nil, billing.Errorf(billing.ECONFLICT, "Invoice %s has no payment code yet (%s); its document is issued once that is resolved.", in.ID, in.CollectionError)
		}
		content, err = pdf.Invoice(pdf.InvoiceDoc{Invoice: in, Issuer: s.Settings.Issuer, Language: cust.Language,
			Location: s.Settings.Location, Vouchers: live(vs), PaymentURL: s.payURL(in), Date: *in.FinalizedAt})
	case "receipt":
		if in.Status != billing.InvoicePaid || in.PaidAt == nil || in.AmountPaid == 0 {
			return nil, billing.Errorf(billing.ECONFLICT, "Invoice %s has no payment to give a receipt for.", in.ID)
		}
		content, err = pdf.Receipt(pdf.ReceiptDoc{Invoice: in, Issuer: s.Settings.Issuer, Language: cust.Language,
			Location: s.Settings.Location, Amount: in.AmountPaid, PaidAt: *in.PaidAt})
	default:
		return nil, billing.Invalid("kind", "unknown document kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	return s.store(ctx, in.ID, kind, content)
}

// KindCreditNote prefixes the document kind of a credit note's PDF, stored
// with its invoice: "credit_note:<credit note id>".
const KindCreditNote = "credit_note:"

// store keeps a rendered document unless one of the same kind was stored
// first, and returns the stored one.
func (s *Service) store(ctx context.Context, invoiceID, kind string, content []byte) (*billing.Document, error) {
	sum := sha256.Sum256(content)
	doc := &billing.Document{ID: billing.NewID(billing.PrefixDocument), InvoiceID: invoiceID, Kind: kind,
		SHA256: hex.EncodeToString(sum[:]), Content: content, CreatedAt: s.Clock.Now().UTC()}
	if _, err := s.DB.NewInsert().Model(doc).On("CONFLICT (invoice_id, kind) DO NOTHING").Exec(ctx); err != nil {
		return nil, store.Translate(err)
	}
	stored := new(billing.Document)
	err := s.DB.NewSelect().Model(stored).Where("invoice_id = ?", invoiceID).Where("kind = ?", kind).Scan(ctx)
	return stored, store.Translate(err)
}

// creditNote reads a credit note with its lines.
func (s *Service) creditNote(ctx context.Context, id string) (*billing.CreditNote, error) {
	cn := new(billing.CreditNote)
	if err := s.DB.NewSelect().Model(cn).Where("id = ?", id).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, billing.NotFound("credit_note", id)
		}
		return nil, store.Translate(err)
	}
	err := s.DB.NewSelect().Model(&cn.Lines).Where("credit_note_id = ?", id).Order("position").Scan(ctx)
	return cn, store.Translate(err)
}

// load reads an invoice with its lines, its customer and its vouchers.
func (s *Service) load(ctx context.Context, id string) (*billing.Invoice, *billing.Customer, []*billing.Voucher, error) {
	in := new(billing.Invoice)
	if err := s.DB.NewSelect().Model(in).Where("id = ?", id).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, nil, billing.NotFound("invoice", id)
		}
		return nil, nil, nil, store.Translate(err)
	}
	if err := s.DB.NewSelect().Model(&in.Lines).Where("invoice_id = ?", id).Order("position").Scan(ctx); err != nil {
		return nil, nil, nil, store.Translate(err)
	}
	cust := new(billing.Customer)
	if err := s.DB.NewSelect().Model(cust).Where("id = ?", in.CustomerID).Scan(ctx); err != nil {
		return nil, nil, nil, store.Translate(err)
	}
	var vs []*billing.Voucher
	if err := s.DB.NewSelect().Model(&vs).Where("invoice_id = ?", id).Order("id").Scan(ctx); err != nil {
		return nil, nil, nil, store.Translate(err)
	}
	return in, cust, vs, nil
}

// live returns the vouchers that can be paid.
func live(vs []*billing.Voucher) []*billing.Voucher {
	var out []*billing.Voucher
	for _, v := range vs {
		if v.Status == "pending" && v.ProviderID != "" {
			out = append(out, v)
		}
	}
	return out
}

// allIssued reports whether every pending voucher has been issued.
func allIssued(vs []*billing.Voucher) bool {
	for _, v := range vs {
		if v.Status == "pending" && v.ProviderID == "" {
			return false
		}
	}
	return true
}

func (s *Service) payURL(in *billing.Invoice) string { return s.PublicURL + "/pay/" + in.PayToken }

// HandleEmail is the outbox handler of TaskEmail tasks: it renders the
// e-mail from the current state and sends it with a Message-ID derived from
// the task, so a retry sends the same message, never a second one.
func (s *Service) HandleEmail(ctx context.Context, t *billing.Task, now time.Time) error {
	kindStr, id, _ := strings.Cut(t.Key, ":")
	kind := mail.Kind(kindStr)
	invoiceID := t.ObjectID
	in, cust, vs, err := s.load(ctx, invoiceID)
	if err != nil {
		return err
	}
	data := mail.MailData{Language: cust.Language, CustomerName: cust.Name, IssuerName: in.IssuerName,
		InvoiceNumber: deref(in.Number), Amount: in.AmountRemaining, PayURL: s.payURL(in)}
	var attach []mail.Attachment
	switch kind {
	case mail.KindInvoice:
		if in.Status != billing.InvoiceOpen {
			return nil // settled before the e-mail went out: nothing to ask for
		}
		if !allIssued(vs) {
			return errors.New("the invoice's vouchers are not all issued yet")
		}
		doc, err := s.Document(ctx, in.ID, "invoice")
		if err != nil {
			return err
		}
		attach = append(attach, mail.Attachment{Name: deref(in.Number) + ".pdf", ContentType: "application/pdf", Data: doc.Content})
		s.codes(&data, live(vs))
	case mail.KindReminder, mail.KindReissued:
		id, _, _ = strings.Cut(id, ":") // a reminder's key ends with its days before the deadline
		v := find(vs, id)
		if v == nil || v.Status != "pending" || in.Status != billing.InvoiceOpen {
			return nil // paid or replaced meanwhile
		}
		if v.ProviderID == "" {
			return errors.New("the voucher is not issued yet")
		}
		s.codes(&data, []*billing.Voucher{v})
		// Counted from when the reminder was due, not from this attempt: a
		// retry sends the same message.
		data.DaysLeft = int(v.ExpiresAt.Sub(t.CreatedAt).Hours()/24 + 0.5)
	case mail.KindReceipt:
		doc, err := s.Document(ctx, in.ID, "receipt")
		if err != nil {
			return permanentIfRefused(err)
		}
		data.Amount, data.PaidAt = in.AmountPaid, *in.PaidAt
		attach = append(attach, mail.Attachment{Name: "receipt-" + deref(in.Number) + ".pdf", ContentType: "application/pdf", Data: doc.Content})
	case mail.KindVoided:
		data.Amount = in.Total
	case mail.KindCreditNote:
		cn, err := s.creditNote(ctx, id)
		if err != nil {
			return permanentIfRefused(err)
		}
		data.CreditNoteNumber, data.CreditAmount, data.CreditOutcome = cn.Number, cn.Total, string(cn.Outcome)
		data.Amount = 0
		if cn.Outcome == billing.OutcomeReduceAmountDue && in.Status == billing.InvoiceOpen && in.AmountRemaining > 0 {
			// Wait for the vouchers of the new amount, to send their codes.
			if in.CollectionStatus == billing.CollectionPending || in.CollectionStatus == billing.CollectionActive && !allIssued(vs) {
				return errors.New("the vouchers for the new amount are not issued yet")
			}
			data.Amount = in.AmountRemaining
			s.codes(&data, live(vs))
		}
		doc, err := s.Document(ctx, in.ID, KindCreditNote+cn.ID)
		if err != nil {
			return err
		}
		attach = append(attach, mail.Attachment{Name: cn.Number + ".pdf", ContentType: "application/pdf", Data: doc.Content})
	case mail.KindOverdue:
		if in.Status != billing.InvoiceOpen && in.Status != billing.InvoiceUncollectible || in.AmountRemaining <= 0 {
			return nil // settled meanwhile
		}
		if in.SubscriptionID != nil {
			var status billing.SubscriptionStatus
			if err := s.DB.NewSelect().Model((*billing.Subscription)(nil)).Column("status").Where("id = ?", *in.SubscriptionID).Scan(ctx, &status); err != nil {
				return store.Translate(err)
			}
			data.SubscriptionOutcome = string(status)
		}
	default:
		return outbox.Permanent(fmt.Errorf("unknown e-mail kind %q", kind))
	}
	subject, text, html, err := mail.Render(kind, data)
	if err != nil {
		return outbox.Permanent(err)
	}
	msg := &mail.Message{ID: s.messageID(t), Date: t.CreatedAt, From: s.From,
		To: []mail.Address{{Name: cust.Name, Email: cust.Email}}, Subject: subject, Text: text, HTML: html, Attachments: attach}
	info := map[string]any{"kind": kind, "to": cust.Email, "message_id": msg.ID, "subject": subject, "attempt": t.Attempts}
	if err := s.Sender.Send(ctx, msg); err != nil {
		info["error"] = err.Error()
		if !mail.IsTemporary(err) {
			s.event(ctx, "email.failed", in.ID, info)
			return outbox.Permanent(err)
		}
		s.event(ctx, "email.deferred", in.ID, info)
		return err
	}
	// Sent: failing to record it must not send the message again, nor a
	// shutdown canceling ctx meanwhile keep it from being recorded.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), store.QueryTimeout)
	defer cancel()
	if err := s.event(rctx, "email.sent", in.ID, info); err != nil {
		s.Logger.Error("recording email.sent", "invoice", in.ID, "message_id", msg.ID, "err", err)
	}
	return nil
}

// permanentIfRefused ends a task on an error that a retry cannot change
// (what it needs is missing or not allowed); a storage hiccup is retried.
func permanentIfRefused(err error) error {
	switch billing.ErrorCode(err) {
	case billing.ENOTFOUND, billing.ECONFLICT, billing.EINVALID:
		return outbox.Permanent(err)
	}
	return err
}

// OnFailed records an e-mail given up after its last retry.
func (s *Service) OnFailed(ctx context.Context, t *billing.Task, err error) {
	if t.Kind == TaskEmail {
		s.event(ctx, "email.failed", t.ObjectID, map[string]any{"key": t.Key, "error": err.Error(), "attempts": t.Attempts})
	}
}

func (s *Service) codes(data *mail.MailData, vs []*billing.Voucher) {
	for _, v := range vs {
		data.PaymentCodes = append(data.PaymentCodes, v.PaymentCodes...)
		if v.ExpiresAt != nil && (data.Deadline.IsZero() || v.ExpiresAt.Before(data.Deadline)) {
			data.Deadline = *v.ExpiresAt
		}
	}
	if len(vs) == 1 {
		data.Amount = vs[0].Amount
		return
	}
	// An invoice collected in parts: each part with its own amount,
	// deadline and codes.
	vs = slices.Clone(vs)
	slices.SortFunc(vs, func(a, b *billing.Voucher) int { return a.Part - b.Part })
	for i, v := range vs {
		p := mail.Part{Number: i + 1, Amount: v.Amount, PaymentCodes: v.PaymentCodes}
		if v.ExpiresAt != nil {
			p.Deadline = *v.ExpiresAt
		}
		data.Parts = append(data.Parts, p)
	}
}

func (s *Service) messageID(t *billing.Task) string {
	host := "billingd.invalid"
	if u, err := url.Parse(s.PublicURL); err == nil && u.Hostname() != "" && strings.Contains(u.Hostname(), ".") && !strings.ContainsAny(u.Hostname(), ":") {
		host = u.Hostname()
	}
	return strings.ReplaceAll(t.Key, ":", ".") + "." + t.ID + "@" + host
}

func (s *Service) event(ctx context.Context, typ, invoiceID string, data any) error {
	ev, err := billing.NewEvent(s.Clock.Now(), typ, invoiceID, data)
	if err != nil {
		return err
	}
	return store.InsertEvents(ctx, s.DB, ev)
}

func find(vs []*billing.Voucher, id string) *billing.Voucher {
	for _, v := range vs {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Enqueue records an e-mail of kind about id (an invoice or voucher id) for
// the invoice, in tx, at now.
func Enqueue(ctx context.Context, tx bun.IDB, kind mail.Kind, id, invoiceID string, now time.Time) error {
	return outbox.Enqueue(ctx, tx, TaskEmail, EmailKey(kind, id), invoiceID, now)
}
