package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"billingd/billing"
	"billingd/billing/api"
	"billingd/billing/scheduler"
	"billingd/billing/store"
	"billingd/collection"
	"billingd/collection/opn"
	"billingd/collection/sandbox"
	stripekonbini "billingd/collection/stripe"
)

// provider builds the configured payment provider and the routes it needs.
// The sandbox is an Opn-compatible emulator served by billingd itself under
// /sandbox and reached through the same Opn client as production, so the
// default mode runs the real client, webhook verification and reconciliation.
func (m *Main) provider(ctx context.Context, apiKeyHash string) (collection.Provider, func(*http.ServeMux), []scheduler.Job, error) {
	local := "http://" + m.Addr
	timeout, _ := time.ParseDuration(m.Config.ProviderTimeout)
	hc := &http.Client{Timeout: timeout}
	switch m.Config.Provider {
	case "opn":
		p, err := opn.New(opn.Config{BaseURL: m.Config.OpnURL, SecretKey: m.Config.OpnSecretKey, WebhookSecret: m.Config.OpnWebhookSecret, Clock: m.Clock, HTTPClient: hc})
		return p, nil, nil, err
	case "stripe":
		p, err := stripekonbini.New(stripekonbini.Config{APIKey: m.Config.StripeSecretKey, WebhookSecret: m.Config.StripeWebhookSecret, BaseURL: m.Config.StripeURL, Clock: m.Clock, HTTPClient: hc})
		return p, nil, nil, err
	}
	key, err := storedSecret(ctx, m.DB, "sandbox_secret_key", func() string { return "skey_test_" + billing.NewToken() })
	if err != nil {
		return nil, nil, nil, err
	}
	whsec, err := storedSecret(ctx, m.DB, "sandbox_webhook_secret", func() string {
		b := make([]byte, 32)
		rand.Read(b) //nolint:errcheck
		return base64.StdEncoding.EncodeToString(b)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	sb, err := sandbox.New(sandbox.Config{
		SecretKey: key, Clock: m.Clock, PublicURL: m.Config.PublicURL + "/sandbox",
		WebhookURL: local + "/webhooks/opn", WebhookSecret: whsec, Logger: m.Logger,
		StatePath: filepath.Join(m.Config.DataDir, "sandbox.json"),
		// The simulation routes take the operator's API key as well as the
		// sandbox's own Basic key.
		Authorize: func(r *http.Request) bool {
			if u, _, ok := r.BasicAuth(); ok {
				return u == key
			}
			k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			return ok && api.HashKey(k) == apiKeyHash
		},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	m.sandbox = sb
	p, err := opn.New(opn.Config{Name: "sandbox", BaseURL: local + "/sandbox", SecretKey: key, WebhookSecret: whsec, Clock: m.Clock, HTTPClient: hc})
	mount := func(mux *http.ServeMux) { mux.Handle("/sandbox/", http.StripPrefix("/sandbox", sb)) }
	job := scheduler.Job{
		Name: "sandbox",
		Run:  sb.Tick,
		Next: func(ctx context.Context, after time.Time) (time.Time, bool, error) {
			t, ok := sb.NextDue()
			return t, ok && t.After(after), nil
		},
	}
	return p, mount, []scheduler.Job{job}, err
}

// storedSecret returns the settings row key, creating it with gen on first use.
func storedSecret(ctx context.Context, db *store.DB, key string, gen func() string) (string, error) {
	v, ok, err := store.Setting(ctx, db, key)
	if err != nil || ok {
		return v, err
	}
	v = gen()
	return v, store.SetSetting(ctx, db, key, v)
}

// simulate drives a sandbox charge (the payment page's test buttons) and
// applies the resulting webhook before returning, so the page shows the
// outcome at once.
func (m *Main) simulate(ctx context.Context, chargeID, action string) error {
	key, _, err := store.Setting(ctx, m.DB, "sandbox_secret_key")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.Addr+"/sandbox/charges/"+url.PathEscape(chargeID)+"/"+action, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(key, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox %s %s: %s", action, chargeID, resp.Status)
	}
	return m.Collector.Run(ctx, m.Clock.Now())
}
