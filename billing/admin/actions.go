package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/store"
	"billingd/invoice/delivery"
)

// invoiceAction carries out one action on an invoice (the route's
// {action}) and goes back to the invoice's page with a message. Void, mark
// uncollectible and issuing a credit note must be confirmed with the form's
// checkbox.
func (s *Server) invoiceAction(w http.ResponseWriter, r *http.Request, x *session) {
	ctx, id, action := r.Context(), r.PathValue("id"), r.PathValue("action")
	back := "/admin/invoices/" + url.PathEscape(id)
	var err error
	detail := "" // shown after the success message
	switch action {
	case "finalize":
		_, err = s.Invoices.Finalize(ctx, id)
	case "void", "mark_uncollectible", "credit_note":
		if r.PostFormValue("confirm") != "yes" {
			s.flashNext(w, r, x, &flash{Kind: "error", Key: "confirm_needed"}, back)
			return
		}
		if action == "credit_note" {
			var cn *billing.CreditNote
			if cn, err = s.issueCreditNote(ctx, id, r); err == nil {
				detail = cn.Number
			}
		} else if action == "void" {
			_, err = s.Invoices.Void(ctx, id)
		} else {
			_, err = s.Invoices.MarkUncollectible(ctx, id)
		}
	case "reissue_voucher":
		err = s.reissue(ctx, id)
	case "resend_email":
		err = s.resend(ctx, id)
	default:
		s.fail(w, r, x, billing.Errorf(billing.ENOTFOUND, "No such action: %s", action))
		return
	}
	if err != nil {
		if billing.ErrorCode(err) == billing.EINTERNAL {
			s.fail(w, r, x, err)
			return
		}
		s.flashNext(w, r, x, &flash{Kind: "error", Key: "action_failed", Detail: billing.ErrorMessage(err)}, back)
		return
	}
	s.Logger.Info("admin action", "action", action, "invoice", id, "remote", remoteHost(r))
	s.kick()
	s.flashNext(w, r, x, &flash{Kind: "ok", Key: "done." + action, Detail: detail}, back)
}

// reissue asks the collector for a new voucher for an open invoice that has
// none live: its last voucher expired after the last automatic reissue, or
// the provider refused it (action_required) and the cause has been fixed
// (the customer's phone number, say). It marks the invoice's collection
// pending, as finalization does, with an event, in one transaction; the
// collector then creates the voucher for the amount remaining and e-mails
// the customer ("new voucher" after an expiry, the invoice otherwise). The
// voucher is valid until the due date, or for 24 hours if that has passed
// (the collector's rule for a first voucher).
func (s *Server) reissue(ctx context.Context, id string) error {
	return s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		in := new(billing.Invoice)
		if err := s.DB.ForUpdate(tx.NewSelect().Model(in).Where("id = ?", id)).Scan(ctx); err != nil {
			return notFound(err, "invoice", id)
		}
		if in.Status != billing.InvoiceOpen || in.AmountRemaining <= 0 {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s is %s; only an open invoice with an amount remaining gets a new voucher.", id, in.Status)
		}
		if in.CollectionStatus != billing.CollectionNone && in.CollectionStatus != billing.CollectionActionRequired {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s already has a voucher being issued or awaiting payment (collection %s).", id, in.CollectionStatus)
		}
		live, err := tx.NewSelect().Model((*billing.Voucher)(nil)).Where("invoice_id = ?", id).Where("status = 'pending'").Exists(ctx)
		if err != nil {
			return err
		}
		if live {
			return billing.Errorf(billing.ECONFLICT, "Invoice %s has a voucher awaiting payment.", id)
		}
		in.CollectionStatus, in.CollectionError = billing.CollectionPending, ""
		if _, err := tx.NewUpdate().Model(in).Column("collection_status", "collection_error").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.event(ctx, tx, "invoice.voucher_reissue_requested", id, in)
	})
}

// resend queues the invoice e-mail of an open invoice (with its live
// payment codes and PDF) or the receipt of a paid one, again.
//
// E-mail tasks are unique by key, "<kind>:<id>", so enqueueing the original
// key again would do nothing. A resend gets its own key,
// "<kind>:<invoice id>:resend-<n>", n counting the resends of that kind:
// delivery's handler reads the kind before the first colon and takes the
// invoice from the task's object id, so it renders the same e-mail, with a
// Message-ID of its own (derived from the key). Two clicks at once compute
// the same n and queue one e-mail.
func (s *Server) resend(ctx context.Context, id string) error {
	return s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		in := new(billing.Invoice)
		if err := tx.NewSelect().Model(in).Where("id = ?", id).Scan(ctx); err != nil {
			return notFound(err, "invoice", id)
		}
		var vs []*billing.Voucher
		if err := tx.NewSelect().Model(&vs).Where("invoice_id = ?", id).Scan(ctx); err != nil {
			return err
		}
		var kind mail.Kind
		switch allowed(in, vs).Resend {
		case "invoice":
			kind = mail.KindInvoice
		case "receipt":
			kind = mail.KindReceipt
		default:
			return billing.Errorf(billing.ECONFLICT, "Invoice %s (%s, collection %s) has no e-mail to send again: the invoice e-mail needs a live voucher, the receipt a payment.", id, in.Status, in.CollectionStatus)
		}
		prefix := delivery.EmailKey(kind, id) + ":resend-"
		n, err := tx.NewSelect().Model((*billing.Task)(nil)).Where("kind = ?", delivery.TaskEmail).
			Where(`key LIKE ? ESCAPE '\'`, escapeLike(prefix)+"%").Count(ctx)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("%s:resend-%d", id, n+1)
		if err := delivery.Enqueue(ctx, tx, kind, key, id, s.Clock.Now()); err != nil {
			return err
		}
		return s.event(ctx, tx, "invoice.email_resend_requested", id, map[string]string{"kind": string(kind), "key": delivery.EmailKey(kind, key)})
	})
}

// event records an action in the audit trail, in tx.
func (s *Server) event(ctx context.Context, tx bun.IDB, typ, id string, data any) error {
	ev, err := billing.NewEvent(s.Clock.Now().UTC(), typ, id, data)
	if err != nil {
		return err
	}
	return store.InsertEvents(ctx, tx, ev)
}
