package subscription

import (
	"context"
	"net/mail"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
)

// Service manages customers, plans and subscriptions and runs billing.
type Service struct {
	DB       *store.DB
	Clock    billing.Clock
	Settings billing.Settings
	// BatchSize is how many subscriptions one billing-run transaction
	// handles (default 500).
	BatchSize int

	plans sync.Map // plan id → *billing.Plan: plans never change once created
}

// CustomerParams creates or updates a customer. On update, nil fields are
// left as they are.
type CustomerParams struct {
	Name               *string           `json:"name"`
	Email              *string           `json:"email"`
	Phone              *string           `json:"phone"`
	KanaName           *string           `json:"kana_name"`
	Language           *string           `json:"language"`
	Address            *string           `json:"address"`
	RegistrationNumber *string           `json:"registration_number"`
	Metadata           map[string]string `json:"metadata"`
}

func (p CustomerParams) apply(c *billing.Customer) error {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = strings.TrimSpace(*src)
		}
	}
	set(&c.Name, p.Name)
	set(&c.Email, p.Email)
	set(&c.Phone, p.Phone)
	set(&c.KanaName, p.KanaName)
	set(&c.Language, p.Language)
	set(&c.Address, p.Address)
	set(&c.RegistrationNumber, p.RegistrationNumber)
	if p.Metadata != nil {
		c.Metadata = p.Metadata
	}
	if c.Language == "" {
		c.Language = "ja"
	}
	switch {
	case c.Name == "" || utf8.RuneCountInString(c.Name) > 200:
		return billing.Invalid("name", "name is required and must be at most 200 characters")
	case strings.ContainsAny(c.Name+c.KanaName, "\r\n"):
		return billing.Invalid("name", "name and kana_name must not contain line breaks")
	case strings.ContainsAny(c.Email, "\r\n"):
		return billing.Invalid("email", "email must not contain line breaks")
	case !validEmail(c.Email):
		return billing.Invalid("email", "email must be a valid e-mail address like name@example.com, got %q", c.Email)
	case strings.ContainsAny(c.Phone, "\r\n") || !billing.ValidPhone(c.Phone):
		return billing.Invalid("phone", "phone is required: a Japanese number of 10 or 11 digits (hyphens and spaces allowed), got %q", c.Phone)
	case utf8.RuneCountInString(c.KanaName) > 200:
		return billing.Invalid("kana_name", "kana_name must be at most 200 characters")
	case c.Language != "ja" && c.Language != "en":
		return billing.Invalid("language", "language must be ja or en, got %q", c.Language)
	case utf8.RuneCountInString(c.Address) > 500:
		return billing.Invalid("address", "address must be at most 500 characters")
	case len(c.Metadata) > 50:
		return billing.Invalid("metadata", "metadata has at most 50 keys")
	}
	if c.RegistrationNumber != "" {
		if err := billing.ValidateRegistrationNumber("registration_number", c.RegistrationNumber, false); err != nil {
			return err
		}
	}
	for k, v := range c.Metadata {
		if k == "" || len(k) > 40 || utf8.RuneCountInString(v) > 500 {
			return billing.Invalid("metadata", "metadata keys must be 1–40 bytes and values at most 500 characters")
		}
	}
	return nil
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 {
		return false
	}
	// A domain a message can be delivered to: dotted labels of letters,
	// digits and hyphens (not at a label's ends), not a bare host or an
	// address literal.
	labels := strings.Split(s[strings.LastIndex(s, "@")+1:], ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r > 127) {
				return false
			}
		}
	}
	return true
}

// CreateCustomer creates a customer.
func (s *Service) CreateCustomer(ctx context.Context, p CustomerParams) (*billing.Customer, error) {
	c := &billing.Customer{ID: billing.NewID(billing.PrefixCustomer), CreatedAt: s.Clock.Now().UTC(), Metadata: map[string]string{}}
	if err := p.apply(c); err != nil {
		return nil, err
	}
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(c).Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, "customer.created", c.ID, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// UpdateCustomer changes the given fields of a customer. Invoices already
// finalized keep the name and e-mail they were issued with.
func (s *Service) UpdateCustomer(ctx context.Context, id string, p CustomerParams) (*billing.Customer, error) {
	c := new(billing.Customer)
	err := s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := s.DB.ForUpdate(tx.NewSelect().Model(c).Where("id = ?", id)).Scan(ctx); err != nil {
			return notFound(err, "customer", id)
		}
		if err := p.apply(c); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(c).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, "customer.updated", c.ID, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// GetCustomer returns a customer.
func (s *Service) GetCustomer(ctx context.Context, id string) (*billing.Customer, error) {
	c := new(billing.Customer)
	if err := s.DB.NewSelect().Model(c).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "customer", id)
	}
	return c, nil
}

// ListCustomers returns one page of customers, newest first, optionally only
// those with the given e-mail.
func (s *Service) ListCustomers(ctx context.Context, email string, p store.Page) ([]*billing.Customer, bool, error) {
	q := s.DB.NewSelect().Model((*billing.Customer)(nil))
	if email != "" {
		q = q.Where("email = ?", email)
	}
	return store.List[*billing.Customer](ctx, q, "id", p)
}

func (s *Service) record(ctx context.Context, tx bun.IDB, typ, id string, obj any) error {
	ev, err := billing.NewEvent(s.Clock.Now().UTC(), typ, id, obj)
	if err != nil {
		return err
	}
	return store.InsertEvents(ctx, tx, ev)
}

// notFound turns a "no rows" error into a not-found error naming the object.
func notFound(err error, kind, id string) error {
	err = store.Translate(err)
	if billing.ErrorCode(err) == billing.ENOTFOUND {
		return billing.NotFound(kind, id)
	}
	return err
}
