package api

import (
	"net/http"

	"billingd/invoice"
	"billingd/invoice/delivery"
)

func (s *Server) createCreditNote(w http.ResponseWriter, r *http.Request) (any, error) {
	var p invoice.CreditNoteParams
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return s.Invoices.CreateCreditNote(r.Context(), p)
}

func (s *Server) getCreditNote(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Invoices.GetCreditNote(r.Context(), r.PathValue("id"))
}

func (s *Server) listCreditNotes(w http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r, "invoice", "customer")
	f := invoice.CreditNoteFilter{Invoice: q.str("invoice"), Customer: q.str("customer")}
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	data, more, err := s.Invoices.ListCreditNotes(r.Context(), f, p)
	return newList(r, data, more), err
}

// creditNotePDF serves the credit note's PDF as it was sent (rendered and
// stored on first use), with its SHA-256 in X-Content-SHA256.
func (s *Server) creditNotePDF(w http.ResponseWriter, r *http.Request) {
	cn, err := s.Invoices.GetCreditNote(r.Context(), r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	doc, err := s.Documents.Document(r.Context(), cn.InvoiceID, delivery.KindCreditNote+cn.ID)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("X-Content-SHA256", doc.SHA256)
	w.Write(doc.Content) //nolint:errcheck
}
