package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"billingd/billing/webhook"
)

// A receiver in the operator's application checks the Billing-Signature of
// every request against the endpoint's secret (shown once, when the endpoint
// was created) before it trusts the body, refuses stale timestamps against
// replays, and deduplicates by the event id (delivery is at least once).
func ExampleVerify() {
	const secret = "whsec_0123456789abcdefghjkmnpqrstvwx" // from POST /v1/webhook_endpoints

	receiver := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)) // the raw body, before any JSON decoding
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(body, r.Header.Get("Billing-Signature"), secret, 5*time.Minute, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				Object json.RawMessage `json:"object"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		// Skip ev.ID if it was seen before; otherwise act on it, e.g. keep the
		// customer's service on for invoice.paid.
		fmt.Println("received", ev.ID, ev.Type)
		w.WriteHeader(http.StatusNoContent) // any 2xx acknowledges the event
	}

	// What billingd sends (here signed by hand, as billingd does):
	body := `{"id":"evt_0h3v2k8x9q1m4r7t","object":"event","type":"invoice.paid","created":"2027-01-05T03:00:00Z","data":{"object":{"id":"in_1","object":"invoice","status":"paid"}}}`
	for _, sig := range []string{webhook.Sign([]byte(body), secret, time.Now()), "t=1,v1=00"} {
		req := httptest.NewRequest("POST", "/billing/webhooks", strings.NewReader(body))
		req.Header.Set("Billing-Signature", sig)
		rec := httptest.NewRecorder()
		receiver(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// received evt_0h3v2k8x9q1m4r7t invoice.paid
	// 204
	// 400
}
