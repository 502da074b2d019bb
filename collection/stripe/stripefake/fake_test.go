package stripefake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"
)

func TestParseParams(t *testing.T) {
	p, err := parseParams(url.Values{
		"payment_method_types[1]": {"b"}, "payment_method_types[0]": {"a"},
		"expand[]": {"x", "y"},
		"payment_method_data[billing_details][name]": {"山田"},
		"metadata[7]": {"seven"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := params{
		"payment_method_types[]": {"a", "b"},
		"expand[]":               {"x", "y"},
		"payment_method_data[billing_details][name]": {"山田"},
		"metadata[7]": {"seven"},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %v", p)
	}
	if k := p.unknown("payment_method_types[]", "expand[]", "metadata[*]"); k != "payment_method_data[billing_details][name]" {
		t.Errorf("unknown = %q", k)
	}
	for _, bad := range []string{"a[b", "[x]", "a]b[", "a[", "a[b]c"} {
		if _, err := parseParams(url.Values{bad: {"1"}}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// client is a raw HTTP client for the fake.
type client struct {
	t   *testing.T
	url string
}

// do sends form and returns the status, the decoded JSON body and headers.
func (c client) do(method, path, key, idem string, form url.Values) (int, map[string]any, http.Header) {
	c.t.Helper()
	var body io.Reader
	u := c.url + path
	if method == http.MethodGet {
		u += "?" + form.Encode()
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		c.t.Fatal(err)
	}
	return res.StatusCode, out, res.Header
}

// get walks a decoded JSON object along keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func validForm() url.Values {
	return url.Values{
		"amount": {"1000"}, "currency": {"jpy"}, "confirm": {"true"},
		"payment_method_types[]":                      {"konbini"},
		"payment_method_data[type]":                   {"konbini"},
		"payment_method_data[billing_details][name]":  {"山田 太郎"},
		"payment_method_data[billing_details][email]": {"taro@example.jp"},
		"payment_method_options[konbini][expires_at]": {strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)},
		"metadata[attempt_id]":                        {"att_1"},
	}
}

func TestCreateValidation(t *testing.T) {
	s := Start(Options{APIKey: "sk_test_x"})
	defer s.Close()
	c := client{t, s.URL}
	const ko = "payment_method_options[konbini]"
	for _, tc := range []struct {
		name   string
		edit   func(url.Values)
		key    string
		status int
		code   string
		param  string
	}{
		{"ErrNoAPIKey", func(url.Values) {}, "-", 401, "", ""},
		{"ErrWrongAPIKey", func(url.Values) {}, "sk_test_y", 401, "", ""},
		{"ErrUnknownParameter", func(f url.Values) { f.Set("colour", "red") }, "", 400, "parameter_unknown", "colour"},
		{"ErrAmountBelowMinimum", func(f url.Values) { f.Set("amount", "119") }, "", 400, "amount_too_small", "amount"},
		{"ErrAmountAboveMaximum", func(f url.Values) { f.Set("amount", "300001") }, "", 400, "amount_too_large", "amount"},
		{"ErrAmountNotInteger", func(f url.Values) { f.Set("amount", "1e3") }, "", 400, "parameter_invalid_integer", "amount"},
		{"ErrCurrencyNotJPY", func(f url.Values) { f.Set("currency", "usd") }, "", 400, "payment_intent_invalid_parameter", "currency"},
		{"ErrNameMissing", func(f url.Values) { f.Del("payment_method_data[billing_details][name]") }, "", 400, "parameter_missing", "payment_method_data[billing_details][name]"},
		{"ErrExpiresAtUnder30Minutes", func(f url.Values) {
			f.Set(ko+"[expires_at]", strconv.FormatInt(time.Now().Add(29*time.Minute).Unix(), 10))
		}, "", 400, "parameter_invalid", ko + "[expires_at]"},
		{"ErrExpiresAtOver60Days", func(f url.Values) {
			f.Set(ko+"[expires_at]", strconv.FormatInt(time.Now().Add(61*24*time.Hour).Unix(), 10))
		}, "", 400, "parameter_invalid", ko + "[expires_at]"},
		{"ErrExpiresAtAndAfterDays", func(f url.Values) { f.Set(ko+"[expires_after_days]", "3") }, "", 400, "parameter_invalid", ko + "[expires_at]"},
		{"ErrDescription23Characters", func(f url.Values) { f.Set(ko+"[product_description]", strings.Repeat("あ", 23)) }, "", 400, "parameter_invalid", ko + "[product_description]"},
		{"ErrDescriptionIBMExtension", func(f url.Values) { f.Set(ko+"[product_description]", "髙") }, "", 400, "parameter_invalid", ko + "[product_description]"},
		{"ErrConfirmationNumberShort", func(f url.Values) { f.Set(ko+"[confirmation_number]", "123") }, "", 400, "parameter_invalid", ko + "[confirmation_number]"},
		{"OKArrayWithIndex", func(f url.Values) {
			f.Del("payment_method_types[]")
			f.Set("payment_method_types[0]", "konbini")
		}, "", 200, "", ""},
		{"OKExpiresAfterDays", func(f url.Values) {
			f.Del(ko + "[expires_at]")
			f.Set(ko+"[expires_after_days]", "60")
		}, "", 200, "", ""},
		{"OKDescription22Characters", func(f url.Values) { f.Set(ko+"[product_description]", strings.Repeat("あ", 22)) }, "", 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := validForm()
			tc.edit(f)
			key := tc.key
			switch key {
			case "":
				key = "sk_test_x"
			case "-":
				key = ""
			}
			status, body, _ := c.do("POST", "/v1/payment_intents", key, "", f)
			if status != tc.status || get(body, "error", "code") != nilIfEmpty(tc.code) || get(body, "error", "param") != nilIfEmpty(tc.param) {
				t.Errorf("%d %v", status, body)
			}
			if status == 200 {
				if get(body, "status") != "requires_action" || get(body, "next_action", "konbini_display_details", "stores", "lawson", "payment_code") == nil {
					t.Errorf("intent %v", body)
				}
			} else if get(body, "error", "type") == nil || get(body, "error", "message") == nil {
				t.Errorf("error body %v", body)
			}
		})
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestIntentLifecycle(t *testing.T) {
	hooks := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- r
		bodies <- b
	}))
	defer receiver.Close()
	s := Start(Options{APIKey: "sk_test_x", WebhookSecret: "whsec_x", WebhookURL: receiver.URL})
	defer s.Close()
	c := client{t, s.URL}

	status, pi, _ := c.do("POST", "/v1/payment_intents", "sk_test_x", "key1", validForm())
	if status != 200 {
		t.Fatal(pi)
	}
	id := pi["id"].(string)

	t.Run("IdempotentReplay", func(t *testing.T) {
		status, again, h := c.do("POST", "/v1/payment_intents", "sk_test_x", "key1", validForm())
		if status != 200 || again["id"] != id || h.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%d %v", status, again)
		}
	})
	t.Run("ErrIdempotencyKeyReusedWithOtherParams", func(t *testing.T) {
		f := validForm()
		f.Set("amount", "2000")
		status, body, _ := c.do("POST", "/v1/payment_intents", "sk_test_x", "key1", f)
		if status != 400 || get(body, "error", "type") != "idempotency_error" {
			t.Errorf("%d %v", status, body)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		status, body, _ := c.do("GET", "/v1/payment_intents/pi_nope", "sk_test_x", "", nil)
		if status != 404 || get(body, "error", "code") != "resource_missing" {
			t.Errorf("%d %v", status, body)
		}
	})
	t.Run("Search", func(t *testing.T) {
		for q, n := range map[string]int{
			`metadata['attempt_id']:'att_1'`: 1,
			`metadata['attempt_id']:'att_1' AND created>=` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10): 0,
			`metadata["attempt_id"]:"att_2"`:          0,
			`status:'requires_action' AND amount>999`: 1,
		} {
			status, body, _ := c.do("GET", "/v1/payment_intents/search", "sk_test_x", "", url.Values{"query": {q}})
			if data, _ := body["data"].([]any); status != 200 || len(data) != n || body["object"] != "search_result" {
				t.Errorf("%s: %d %v", q, status, body)
			}
		}
		status, body, _ := c.do("GET", "/v1/payment_intents/search", "sk_test_x", "", url.Values{"query": {"metadata['a']:'b' OR status:'x'"}})
		if status != 400 {
			t.Errorf("OR query: %d %v", status, body)
		}
	})
	t.Run("InjectedFailure", func(t *testing.T) {
		s.FailNext(1, 500)
		if status, body, _ := c.do("GET", "/v1/payment_intents/"+id, "sk_test_x", "", nil); status != 500 || get(body, "error", "type") != "api_error" {
			t.Errorf("%d %v", status, body)
		}
		if status, _, _ := c.do("GET", "/v1/payment_intents/"+id, "sk_test_x", "", nil); status != 200 {
			t.Errorf("after the failure: %d", status)
		}
	})
	t.Run("PayDeliversSignedEvent", func(t *testing.T) {
		if err := s.Pay(id); err != nil {
			t.Fatal(err)
		}
		r, body := <-hooks, <-bodies
		// Verified independently with stripe-go.
		if err := webhook.ValidatePayload(body, r.Header.Get("Stripe-Signature"), "whsec_x"); err != nil {
			t.Error(err)
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		if ev["type"] != "payment_intent.succeeded" || get(ev, "data", "object", "id") != id {
			t.Errorf("event %v", ev)
		}
		status, pi, _ := c.do("GET", "/v1/payment_intents/"+id, "sk_test_x", "", url.Values{"expand[]": {"latest_charge.balance_transaction"}})
		bt := get(pi, "latest_charge", "balance_transaction")
		if status != 200 || pi["status"] != "succeeded" || get(bt, "fee") != float64(StripeFee+FeeTax) || get(bt, "net") != float64(1000-StripeFee-FeeTax) {
			t.Errorf("%d %v", status, pi)
		}
		if fd, _ := get(bt, "fee_details").([]any); len(fd) != 2 {
			t.Errorf("fee_details %v", fd)
		}
		if _, pi, _ := c.do("GET", "/v1/payment_intents/"+id, "sk_test_x", "", nil); pi["latest_charge"] == nil || get(pi, "latest_charge", "id") != nil {
			t.Errorf("unexpanded latest_charge %v", pi["latest_charge"])
		}
	})
	t.Run("ErrCancelSucceeded", func(t *testing.T) {
		status, body, _ := c.do("POST", "/v1/payment_intents/"+id+"/cancel", "sk_test_x", "", nil)
		if status != 400 || get(body, "error", "code") != "payment_intent_unexpected_state" || get(body, "error", "payment_intent", "id") != id {
			t.Errorf("%d %v", status, body)
		}
	})
	t.Run("ExpireThenCancel", func(t *testing.T) {
		_, pi, _ := c.do("POST", "/v1/payment_intents", "sk_test_x", "", validForm())
		id := pi["id"].(string)
		if err := s.Expire(id); err != nil {
			t.Fatal(err)
		}
		<-hooks
		if ev := <-bodies; !strings.Contains(string(ev), `"payment_intent.payment_failed"`) {
			t.Errorf("event %s", ev)
		}
		_, pi, _ = c.do("GET", "/v1/payment_intents/"+id, "sk_test_x", "", nil)
		if pi["status"] != "requires_payment_method" || get(pi, "last_payment_error", "code") != "payment_intent_payment_attempt_expired" || pi["next_action"] != nil {
			t.Errorf("expired %v", pi)
		}
		status, pi, _ := c.do("POST", "/v1/payment_intents/"+id+"/cancel", "sk_test_x", "", url.Values{"cancellation_reason": {"abandoned"}})
		if status != 200 || pi["status"] != "canceled" {
			t.Errorf("%d %v", status, pi)
		}
		<-hooks
		if ev := <-bodies; !strings.Contains(string(ev), `"payment_intent.canceled"`) {
			t.Errorf("event %s", ev)
		}
	})
}
