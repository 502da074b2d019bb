package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"billingd/billing/store"
)

// sentMail is one message the daemon wrote to its outbox folder.
type sentMail struct {
	subject, text string
	files         map[string][]byte
}

// outbox returns the e-mails in the daemon's outbox folder, oldest first.
func (d *daemon) sentMails() []sentMail {
	d.t.Helper()
	paths, _ := filepath.Glob(filepath.Join(d.m.Config.DataDir, "outbox", "*.eml"))
	var out []sentMail
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			d.t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			d.t.Fatal(err)
		}
		s, text, files := parts(d.t, m)
		out = append(out, sentMail{s, text, files})
	}
	return out
}

// mailsAbout returns the e-mails whose subject contains all of words.
func (d *daemon) mailsAbout(words ...string) []sentMail {
	var out []sentMail
next:
	for _, e := range d.sentMails() {
		for _, w := range words {
			if !strings.Contains(e.subject, w) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// events returns how many events of typ the object has.
func (d *daemon) eventCount(typ, objectID string) int {
	d.t.Helper()
	return len(d.must("GET", "/v1/events?limit=100&type="+typ+"&object_id="+objectID, nil)["data"].([]any))
}

// charges returns an invoice's vouchers by id.
func (d *daemon) vouchersOf(id string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, c := range d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any) {
		c := c.(map[string]any)
		out[c["id"].(string)] = c
	}
	return out
}

// pdfToText extracts a PDF's text, skipping the test without pdftotext.
func pdfToText(t *testing.T, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext not found (apt-get install poppler-utils): the PDF's text is not checked")
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// finalizedWith creates a customer and a finalized invoice with lines, and
// returns the invoice.
func (d *daemon) finalizedWith(lines ...map[string]any) map[string]any {
	d.t.Helper()
	cus := d.must("POST", "/v1/customers", map[string]any{"name": "山田 太郎", "kana_name": "ヤマダ タロウ", "email": "taro@example.com", "phone": "090-1234-5678"})
	ls := make([]any, len(lines))
	for i, l := range lines {
		ls[i] = l
	}
	in := d.must("POST", "/v1/invoices", map[string]any{"customer": cus["id"], "days_until_due": 10, "lines": ls})
	return d.must("POST", "/v1/invoices/"+in["id"].(string)+"/finalize", nil)
}

// checkCreditInvariant checks every invoice: what it was issued for (its total,
// with the balance it carried or used) is paid, credited before payment,
// carried to the balance or still open (owed, written off if uncollectible,
// voided if void); its credit notes add up to its credited amounts and never
// exceed its total.
func (d *daemon) checkCreditInvariant() {
	d.t.Helper()
	credited := map[string]float64{}
	for _, c := range d.must("GET", "/v1/credit_notes?limit=100", nil)["data"].([]any) {
		c := c.(map[string]any)
		credited[c["invoice"].(string)] += c["total"].(float64)
	}
	for _, x := range d.must("GET", "/v1/invoices?limit=100", nil)["data"].([]any) {
		in := x.(map[string]any)
		if in["status"] == "draft" {
			continue
		}
		f := func(k string) float64 { return in[k].(float64) }
		paid := min(f("amount_paid"), f("amount_due"))
		pre, post := f("pre_payment_credit_notes_amount"), f("post_payment_credit_notes_amount")
		if got := paid + pre + f("carried_to_balance") + f("amount_remaining"); got != f("total")+f("starting_balance") {
			d.t.Errorf("invoice %v (%v): paid %v + credited %v + carried %v + remaining %v = %v, want total %v + starting balance %v",
				in["number"], in["status"], paid, pre, f("carried_to_balance"), f("amount_remaining"), got, f("total"), f("starting_balance"))
		}
		if pre+post != credited[in["id"].(string)] || pre+post > f("total") {
			d.t.Errorf("invoice %v: credited %v + %v, credit notes %v, total %v", in["number"], pre, post, credited[in["id"].(string)], f("total"))
		}
	}
}

// TestCreditNoteReducesOpenInvoice credits part of an open invoice: its
// voucher is replaced by one for the new amount, the customer gets the
// credit note (PDF attached) with the new payment code; crediting the rest
// closes the invoice; more is refused; the replaced slip paid anyway
// becomes a credit on the balance.
func TestCreditNoteReducesOpenInvoice(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, nil)
		in := d.finalizedWith(map[string]any{"description": "Pro プラン", "unit_amount": 1000, "quantity": 3})
		id, number := in["id"].(string), in["number"].(string)
		line := in["lines"].([]any)[0].(map[string]any)["id"].(string)
		v1 := d.voucher(id)
		if v1["amount"] != 3300.0 {
			t.Fatalf("voucher %v, want ¥3,300", v1["amount"])
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-01-05T10:00:00+09:00"})

		cn := d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "reason": "order_change",
			"lines": []any{map[string]any{"invoice_line": line, "quantity": 1}}})
		if cn["object"] != "credit_note" || cn["number"] != "CN-2027-000001" || cn["outcome"] != "reduce_amount_due" || cn["total"] != 1100.0 ||
			cn["tax"] != 100.0 || cn["amount_due_before"] != 3300.0 || cn["amount_due_after"] != 2200.0 || cn["invoice_number"] != number {
			t.Fatalf("credit note: %v", cn)
		}
		v2 := d.voucher(id)
		if v2["id"] == v1["id"] || v2["amount"] != 2200.0 {
			t.Fatalf("new voucher %v (old %v)", v2, v1["id"])
		}
		if old := d.vouchersOf(id)[v1["id"].(string)]; old["status"] != "canceled" {
			t.Fatalf("old voucher: %v", old)
		}
		got := d.must("GET", "/v1/invoices/"+id, nil)
		if got["status"] != "open" || got["total"] != 3300.0 || got["amount_due"] != 2200.0 || got["amount_remaining"] != 2200.0 ||
			got["pre_payment_credit_notes_amount"] != 1100.0 || got["collection_status"] != "active" {
			t.Fatalf("invoice after the credit note: %v", got)
		}
		if d.eventCount("credit_note.created", cn["id"].(string)) != 1 {
			t.Error("no credit_note.created event")
		}

		// The customer hears of it: the PDF and the new code.
		var msgs []sentMail
		eventually(t, "credit note e-mail", func() bool {
			if msgs = d.mailsAbout("CN-2027-000001"); len(msgs) == 1 {
				return true
			}
			// The e-mail waits for the new voucher; if it ran first, its
			// retry is due a minute later on the test clock.
			d.must("POST", "/v1/test_clock/advance", map[string]any{"by": "2m"})
			return false
		})
		code := v2["payment_codes"].([]any)[0].(map[string]any)["payment_code"].(string)
		if !strings.Contains(msgs[0].text, "1,100円") || !strings.Contains(msgs[0].text, "2,200円") || !strings.Contains(msgs[0].text, code) {
			t.Errorf("credit note e-mail lacks the amounts or the new code %s:\n%s", code, msgs[0].text)
		}
		attached := msgs[0].files["CN-2027-000001.pdf"]
		if !bytes.HasPrefix(attached, []byte("%PDF")) {
			t.Fatalf("attachments: %v", keys(msgs[0].files))
		}
		// The operator downloads the bytes that were sent.
		resp := d.get("/v1/credit_notes/" + cn["id"].(string) + "/pdf")
		pdf, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(pdf, attached) || resp.Header.Get("X-Content-SHA256") == "" {
			t.Fatalf("downloaded credit note PDF: %d, %d bytes, same as sent: %v", resp.StatusCode, len(pdf), bytes.Equal(pdf, attached))
		}
		text := pdfToText(t, pdf)
		for _, w := range []string{"返還請求書", "CN-2027-000001", "返還日 2027年1月5日", number, "元の請求書の発行日 2027年1月1日",
			"Pro プラン", "¥1,100", "10%対象（税抜） ¥1,000 消費税 ¥100", "減額後のご請求金額 ¥2,200", "登録番号：T4011001098993"} {
			if !strings.Contains(text, w) {
				t.Errorf("credit note PDF lacks %q:\n%s", w, text)
			}
		}

		// Crediting the rest closes the invoice; its voucher is canceled.
		cn2 := d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "lines": []any{map[string]any{"invoice_line": line}}})
		if cn2["number"] != "CN-2027-000002" || cn2["total"] != 2200.0 || cn2["amount_due_after"] != 0.0 {
			t.Fatalf("second credit note: %v", cn2)
		}
		got = d.must("GET", "/v1/invoices/"+id, nil)
		if got["status"] != "paid" || got["amount_remaining"] != 0.0 || got["pre_payment_credit_notes_amount"] != 3300.0 || got["collection_status"] != "none" {
			t.Fatalf("fully credited invoice: %v", got)
		}
		if c := d.vouchersOf(id)[v2["id"].(string)]; c["status"] != "canceled" {
			t.Fatalf("voucher of the fully credited invoice: %v", c)
		}
		eventually(t, "second credit note e-mail", func() bool {
			m := d.mailsAbout("CN-2027-000002")
			return len(m) == 1 && strings.Contains(m[0].text, "お支払いは不要になりました")
		})
		// Nothing is left to credit.
		code2, body := d.do("POST", "/v1/credit_notes", map[string]any{"invoice": id, "outcome": "customer_balance", "amount": 1})
		if code2 != http.StatusBadRequest {
			t.Fatalf("credit beyond the invoice: %d %v", code2, body)
		}

		// Opn cannot cancel a Konbini slip: the replaced one is paid anyway
		// and the money becomes the customer's credit.
		d.must("POST", "/sandbox/charges/"+v1["provider_id"].(string)+"/mark_as_paid", nil)
		cus := got["customer"].(string)
		eventually(t, "credit on the balance", func() bool { return d.must("GET", "/v1/customers/"+cus, nil)["balance"] == -3300.0 })
		d.checkCreditInvariant()
	})
}

// TestCreditNoteToBalanceAndOutOfBand credits a paid invoice to the
// customer's balance (used by the next invoice) and records a refund made
// elsewhere; numbers stay gapless through refused credit notes.
func TestCreditNoteToBalanceAndOutOfBand(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_CREDIT_NOTE_PREFIX": "RF-{year}-"})
		in := d.finalizedWith(map[string]any{"description": "年間サポート", "unit_amount": 5000, "tax_rate": "standard"})
		id := in["id"].(string)
		v := d.voucher(id)
		d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
		eventually(t, "paid", func() bool { return d.invoiceStatus(id) == "paid" })

		// Refused: reducing what is already paid, a bad reason, too much.
		for _, body := range []map[string]any{
			{"invoice": id, "amount": 1100, "outcome": "reduce_amount_due"},
			{"invoice": id, "amount": 1100, "reason": "changed_my_mind"},
			{"invoice": id, "amount": 5501},
			{"invoice": id},
			{"invoice": "in_nope", "amount": 1},
		} {
			if code, out := d.do("POST", "/v1/credit_notes", body); code != http.StatusBadRequest {
				t.Errorf("%v: %d %v", body, code, out)
			}
		}
		// By amount, tax included: to the balance by default on a paid invoice.
		cn := d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "amount": 1100, "reason": "product_unsatisfactory", "memo": "1月の障害"})
		if cn["number"] != "RF-2027-000001" || cn["outcome"] != "customer_balance" || cn["total"] != 1100.0 || cn["tax"] != 100.0 || cn["tax_behavior"] != "inclusive" {
			t.Fatalf("credit note: %v", cn)
		}
		cus := in["customer"].(string)
		if c := d.must("GET", "/v1/customers/"+cus, nil); c["balance"] != -1100.0 {
			t.Fatalf("balance %v, want -1100", c["balance"])
		}
		// The rest, refunded by bank transfer.
		oob := d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "amount": 4400, "outcome": "out_of_band", "reason": "duplicate"})
		if oob["number"] != "RF-2027-000002" || oob["tax"] != 400.0 {
			t.Fatalf("out-of-band credit note: %v", oob)
		}
		if got := d.must("GET", "/v1/invoices/"+id, nil); got["post_payment_credit_notes_amount"] != 5500.0 || got["amount_paid"] != 5500.0 || got["status"] != "paid" {
			t.Fatalf("invoice: %v", got)
		}
		// Its tax is what the invoice's was, in total.
		if cn["tax"].(float64)+oob["tax"].(float64) != in["tax"].(float64) {
			t.Errorf("credited tax %v + %v, invoice tax %v", cn["tax"], oob["tax"], in["tax"])
		}
		// The balance pays part of the next invoice.
		next := d.must("POST", "/v1/invoices", map[string]any{"customer": cus, "lines": []any{map[string]any{"description": "x", "unit_amount": 3000, "tax_rate": "exempt"}}})
		next = d.must("POST", "/v1/invoices/"+next["id"].(string)+"/finalize", nil)
		if next["starting_balance"] != -1100.0 || next["amount_due"] != 1900.0 {
			t.Fatalf("next invoice: %v", next)
		}
		// A second invoice with two rates cannot be credited by a bare amount.
		two := d.finalizedWith(map[string]any{"description": "A", "unit_amount": 1000}, map[string]any{"description": "B", "unit_amount": 1000, "tax_rate": "reduced"})
		if code, out := d.do("POST", "/v1/credit_notes", map[string]any{"invoice": two["id"], "amount": 100}); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out), "lines") {
			t.Fatalf("amount on two rates: %d %v", code, out)
		}
		third := d.must("POST", "/v1/credit_notes", map[string]any{"invoice": two["id"], "outcome": "customer_balance",
			"lines": []any{map[string]any{"invoice_line": two["lines"].([]any)[1].(map[string]any)["id"], "amount": 500}}})
		if third["number"] != "RF-2027-000003" || third["tax"] != 40.0 {
			t.Fatalf("gapless numbers after refusals: %v", third)
		}
		list := d.must("GET", "/v1/credit_notes?invoice="+id, nil)["data"].([]any)
		if len(list) != 2 || list[0].(map[string]any)["id"] != oob["id"] || len(list[0].(map[string]any)["lines"].([]any)) != 1 {
			t.Fatalf("list by invoice: %v", list)
		}
		if got := d.must("GET", "/v1/credit_notes/"+cn["id"].(string), nil); got["memo"] != "1月の障害" || got["reason"] != "product_unsatisfactory" {
			t.Fatalf("get: %v", got)
		}
		if code, _ := d.do("GET", "/v1/credit_notes/cn_nope", nil); code != http.StatusNotFound {
			t.Fatalf("unknown credit note: %d", code)
		}
		eventually(t, "credit note e-mails", func() bool {
			return len(d.mailsAbout("RF-2027-000001")) == 1 && len(d.mailsAbout("RF-2027-000002")) == 1
		})
		if m := d.mailsAbout("RF-2027-000001")[0]; !strings.Contains(m.text, "残高に計上") {
			t.Errorf("balance e-mail:\n%s", m.text)
		}
		d.checkCreditInvariant()
	})
}

// TestDunningSchedule runs the whole dunning policy on the test clock: a
// reminder 7, 3 and 1 days before each voucher's deadline (those before a
// reissued voucher existed skipped), one reissue, then the invoice written
// off, the subscription canceled and the customer told. A second
// subscription overrides the policy: no reissue, one reminder, unpaid, and
// active again once a credit note settles the invoice.
func TestDunningSchedule(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_DUNNING_REMINDER_DAYS": "7,3,1", "BILLING_VOUCHER_REISSUES": "1",
			"BILLING_VOUCHER_REISSUE_DAYS": "5", "BILLING_DUNNING_INVOICE_OUTCOME": "uncollectible", "BILLING_DUNNING_SUBSCRIPTION_OUTCOME": "canceled"})
		plan := d.must("POST", "/v1/plans", map[string]any{"name": "Basic", "amount": 3000, "interval": "month"})
		subscribe := func(name, email string, dunning any) (string, string) {
			cus := d.must("POST", "/v1/customers", map[string]any{"name": name, "kana_name": "テスト", "email": email, "phone": "09011112222"})
			body := map[string]any{"customer": cus["id"], "days_until_due": 14, "items": []any{map[string]any{"plan": plan["id"]}}}
			if dunning != nil {
				body["dunning"] = dunning
			}
			sub := d.must("POST", "/v1/subscriptions", body)
			invs := d.must("GET", "/v1/invoices?subscription="+sub["id"].(string), nil)["data"].([]any)
			return sub["id"].(string), invs[0].(map[string]any)["id"].(string)
		}
		subA, inA := subscribe("佐藤花子", "hanako@example.com", nil)
		subB, inB := subscribe("鈴木一郎", "ichiro@example.com", map[string]any{"reminder_days": []int{2}, "voucher_reissues": 0,
			"invoice_outcome": "open", "subscription_outcome": "unpaid"})
		if s := d.must("GET", "/v1/subscriptions/"+subB, nil); fmt.Sprint(s["dunning"]) != "map[invoice_outcome:open reminder_days:[2] subscription_outcome:unpaid voucher_reissues:0]" {
			t.Fatalf("dunning override: %v", s["dunning"])
		}
		if code, out := d.do("POST", "/v1/subscriptions", map[string]any{"customer": "x", "items": []any{map[string]any{"plan": plan["id"]}},
			"dunning": map[string]any{"subscription_outcome": "deleted"}}); code != 400 || !strings.Contains(fmt.Sprint(out), "dunning.subscription_outcome") {
			t.Fatalf("bad override: %d %v", code, out)
		}
		first := d.voucher(inA)
		d.voucher(inB)
		// Due in 14 days: the deadline is Jan 15 23:59:59 JST.
		if first["expires_at"] != "2027-01-15T14:59:59Z" {
			t.Fatalf("first voucher expires %v", first["expires_at"])
		}
		reminders := func(who string) []string {
			var days []string
			for _, m := range d.sentMails() {
				if strings.Contains(m.subject, "お支払期限まであと") && strings.Contains(m.text, who) {
					days = append(days, strings.Split(strings.Split(m.subject, "あと")[1], "日")[0])
				}
			}
			return days
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-01-14T00:00:00+09:00"})
		if got := strings.Join(reminders("佐藤花子"), ","); got != "7,3" {
			t.Fatalf("reminders by Jan 14: %q, want 7,3", got)
		}
		if got := strings.Join(reminders("鈴木一郎"), ","); got != "2" {
			t.Fatalf("override reminders by Jan 14: %q, want 2", got)
		}
		// Past the first deadline: A gets its one reissue, B (no reissue) is done.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-01-16T09:00:00+09:00"})
		second := d.voucher(inA)
		if second["id"] == first["id"] || second["expires_at"] != "2027-01-21T14:59:59Z" {
			t.Fatalf("reissued voucher %v", second)
		}
		if len(d.mailsAbout("お支払番号を再発行しました")) != 1 {
			t.Error("no reissue e-mail")
		}
		b := d.must("GET", "/v1/invoices/"+inB, nil)
		if b["status"] != "open" || b["collection_status"] != "none" {
			t.Fatalf("override invoice after its only voucher: %v %v", b["status"], b["collection_status"])
		}
		if s := d.must("GET", "/v1/subscriptions/"+subB, nil); s["status"] != "unpaid" {
			t.Fatalf("override subscription %v, want unpaid", s["status"])
		}
		// Past the reissued voucher's deadline.
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": "2027-01-23T09:00:00+09:00"})
		if got := strings.Join(reminders("佐藤花子"), ","); got != "7,3,1,3,1" {
			t.Fatalf("reminders: %q, want 7,3,1 then 3,1 for the reissue (its 7-day reminder came before it existed)", got)
		}
		a := d.must("GET", "/v1/invoices/"+inA, nil)
		if a["status"] != "uncollectible" || a["marked_uncollectible_at"] == nil || a["amount_remaining"] != 3300.0 {
			t.Fatalf("invoice after the last voucher: %v", a)
		}
		if s := d.must("GET", "/v1/subscriptions/"+subA, nil); s["status"] != "canceled" || s["ended_at"] == nil {
			t.Fatalf("subscription after the last voucher: %v", s)
		}
		for typ, want := range map[string]int{"invoice.will_be_due": 5, "invoice.voucher_expired": 2, "invoice.voucher_reissued": 1,
			"invoice.overdue": 1, "invoice.marked_uncollectible": 1} {
			if n := d.eventCount(typ, inA); n != want {
				t.Errorf("%d %s events, want %d", n, typ, want)
			}
		}
		if d.eventCount("subscription.canceled", subA) != 1 {
			t.Error("no subscription.canceled event")
		}
		overdue := d.mailsAbout("お支払期限を過ぎています")
		if len(overdue) != 2 {
			t.Fatalf("%d overdue e-mails, want one per invoice", len(overdue))
		}
		for _, m := range overdue {
			if strings.Contains(m.text, "佐藤花子") && !strings.Contains(m.text, "解約いたしました") || strings.Contains(m.text, "鈴木一郎") && !strings.Contains(m.text, "停止いたします") {
				t.Errorf("overdue e-mail:\n%s", m.text)
			}
		}
		// The operator settles B with a credit note: the subscription is active again.
		d.must("POST", "/v1/credit_notes", map[string]any{"invoice": inB, "amount": 3300, "reason": "order_change"})
		if got := d.must("GET", "/v1/invoices/"+inB, nil); got["status"] != "paid" {
			t.Fatalf("credited invoice %v", got["status"])
		}
		if s := d.must("GET", "/v1/subscriptions/"+subB, nil); s["status"] != "active" {
			t.Fatalf("subscription after the credit note %v, want active", s["status"])
		}
		d.checkCreditInvariant()
	})
}

func TestDunningConfig(t *testing.T) {
	base := map[string]string{}
	get := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return base[k]
		}
	}
	cfg, err := LoadConfig(get(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Dunning(); fmt.Sprint(p.Reminders()) != "[3]" || p.Reissues() != 2 || p.Invoice() != "open" || p.Subscription() != "past_due" {
		t.Errorf("default policy %+v", p)
	}
	cfg, _ = LoadConfig(get(map[string]string{"BILLING_DUNNING_REMINDER_DAYS": "1, 7,3", "BILLING_VOUCHER_REISSUES": "0"}))
	if p := cfg.Dunning(); fmt.Sprint(p.Reminders()) != "[7 3 1]" || p.Reissues() != 0 {
		t.Errorf("policy %+v", p)
	}
	cfg, _ = LoadConfig(get(map[string]string{"BILLING_DUNNING_REMINDER_DAYS": "none"}))
	if p := cfg.Dunning(); len(p.Reminders()) != 0 {
		t.Errorf("none: %v", p.Reminders())
	}
	for k, v := range map[string]string{"BILLING_DUNNING_REMINDER_DAYS": "7,x", "BILLING_DUNNING_INVOICE_OUTCOME": "void",
		"BILLING_DUNNING_SUBSCRIPTION_OUTCOME": "paused", "BILLING_CREDIT_NOTE_PREFIX": "INV-{year}-"} {
		if _, err := LoadConfig(get(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if _, err := LoadConfig(get(map[string]string{"BILLING_DUNNING_REMINDER_DAYS": "40"})); err == nil {
		t.Error("a reminder 40 days ahead accepted")
	}
	_ = store.SQLite
}
