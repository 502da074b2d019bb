package stripekonbini_test

import (
	"context"
	"os"
	"testing"
	"time"

	stripekonbini "billingd/collection/stripe"
)

// TestStripeMock sends the client's requests to stripe-mock, which checks
// them against Stripe's OpenAPI spec and answers with fixed fixtures (so
// only the absence of errors is checked). Run it with:
//
//	go run github.com/stripe/stripe-mock@v0.197.0 -http-port 12111 &
//	STRIPE_MOCK_URL=http://localhost:12111 go test -run StripeMock ./collection/stripe/
func TestStripeMock(t *testing.T) {
	base := os.Getenv("STRIPE_MOCK_URL")
	if base == "" {
		t.Skip("STRIPE_MOCK_URL not set")
	}
	c, err := stripekonbini.New(stripekonbini.Config{APIKey: "sk_test_123", BaseURL: base, MaxNetworkRetries: new(int64)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := request()
	ch, err := c.Create(ctx, req)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := c.Get(ctx, ch.ID); err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, err := c.FindByAttempt(ctx, req.InvoiceID, req.AttemptID, time.Now()); err != nil {
		t.Errorf("FindByAttempt: %v", err)
	}
	if err := c.Cancel(ctx, ch.ID); err != nil {
		t.Errorf("Cancel: %v", err)
	}
}
