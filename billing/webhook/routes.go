package webhook

import (
	"net/http"
	"slices"
	"strconv"

	"billingd/billing"
	"billingd/billing/store"
)

// Routes registers the /v1/webhook_endpoints routes through v1, the API's
// wrapper for /v1 handlers (authentication, idempotency, JSON encoding and
// errors), reading bodies with the API's decode.
func (s *Service) Routes(v1 func(pattern string, h func(w http.ResponseWriter, r *http.Request) (any, error)), decode func(r *http.Request, v any) error) {
	v1("POST /v1/webhook_endpoints", func(w http.ResponseWriter, r *http.Request) (any, error) {
		var p EndpointParams
		if err := decode(r, &p); err != nil {
			return nil, err
		}
		return s.Create(r.Context(), p)
	})
	v1("GET /v1/webhook_endpoints", s.listHandler)
	v1("GET /v1/webhook_endpoints/{id}", func(w http.ResponseWriter, r *http.Request) (any, error) {
		return s.Get(r.Context(), r.PathValue("id"))
	})
	v1("POST /v1/webhook_endpoints/{id}", func(w http.ResponseWriter, r *http.Request) (any, error) {
		var p EndpointParams
		if err := decode(r, &p); err != nil {
			return nil, err
		}
		return s.Update(r.Context(), r.PathValue("id"), p)
	})
	v1("GET /v1/webhook_endpoints/{id}/deliveries", s.deliveriesHandler)
}

func (s *Service) listHandler(w http.ResponseWriter, r *http.Request) (any, error) {
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	data, more, err := s.List(r.Context(), p)
	return newList(r, data, more), err
}

func (s *Service) deliveriesHandler(w http.ResponseWriter, r *http.Request) (any, error) {
	p, err := page(r, "status")
	if err != nil {
		return nil, err
	}
	st := r.URL.Query().Get("status")
	switch st {
	case "", StatusPending, StatusSucceeded, StatusFailed:
	default:
		return nil, billing.Invalid("status", "status must be pending, succeeded or failed, got %q", st)
	}
	data, more, err := s.Deliveries(r.Context(), r.PathValue("id"), st, p)
	return newList(r, data, more), err
}

// list is a Stripe list response.
type list[T any] struct {
	Object  string `json:"object"`
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Data    []T    `json:"data"`
}

func newList[T any](r *http.Request, data []T, more bool) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Object: "list", URL: r.URL.Path, HasMore: more, Data: data}
}

// page reads limit and starting_after, refusing query parameters other than
// those and extra.
func page(r *http.Request, extra ...string) (store.Page, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "limit" && k != "starting_after" && !slices.Contains(extra, k) {
			return store.Page{}, billing.Invalid(k, "Received unknown parameter: %s.", k)
		}
	}
	p := store.Page{StartingAfter: q.Get("starting_after")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return p, billing.Invalid("limit", "limit must be a whole number, got %q", l)
		}
		p.Limit = n
	}
	return p, p.Normalize()
}
