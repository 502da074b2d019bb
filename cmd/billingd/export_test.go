package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/japanese"
)

// all pages of a list endpoint.
func (d *daemon) all(path string) []map[string]any {
	d.t.Helper()
	var out []map[string]any
	after := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for {
		p := path + sep + "limit=100"
		if after != "" {
			p += "&starting_after=" + after
		}
		page := d.must("GET", p, nil)
		for _, x := range page["data"].([]any) {
			out = append(out, x.(map[string]any))
		}
		if page["has_more"] != true || len(out) == 0 {
			return out
		}
		after = out[len(out)-1]["id"].(string)
	}
}

func num(v any) int64 {
	if f, ok := v.(float64); ok {
		return int64(f)
	}
	return 0
}

func when(v any) *time.Time {
	s, _ := v.(string)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// yearOfBilling drives the daemon through 2027 with six customers: one
// that pays everything (two tax rates), a tax-inclusive one with a voided
// invoice and one marked uncollectible then paid, one whose invoices fall
// below the Konbini minimum and are carried over, a yearly one paid by
// three split vouchers (the last a month late), one who never pays (written
// off, one of them then voided) and one who pays a voided invoice and uses
// the credit. Credit notes of each outcome: the payer's July invoice is
// reduced on both rates before it is paid, two written-off invoices are
// reduced (one of them then voided), the reduced-rate line of a paid one is
// refunded out of band and a paid invoice is credited to a customer's
// balance.
func yearOfBilling(t *testing.T, d *daemon) {
	customer := func(name, kana string) string {
		return d.must("POST", "/v1/customers", map[string]any{"name": name, "kana_name": kana, "email": "x@example.com", "phone": "090-1234-5678"})["id"].(string)
	}
	plan := func(name string, amount int64, interval, rate, behavior string) string {
		return d.must("POST", "/v1/plans", map[string]any{"name": name, "amount": amount, "interval": interval, "tax_rate": rate, "tax_behavior": behavior})["id"].(string)
	}
	payer := customer("山田〜太郎", "ヤマダタロウ")
	acme := customer(`Acme, "Japan" K.K.`, "アクメ")
	small := customer("小口 商店", "コグチショウテン")
	big := customer("大口 株式会社", "オオグチカブシキガイシャ")
	never := customer("未払 太郎", "ミハライタロウ")
	credit := customer("返金 花子", "ヘンキンハナコ")
	start := "2027-01-01T10:00:00+09:00"
	d.must("POST", "/v1/test_clock/advance", map[string]any{"to": start})
	sub := func(cus string, items ...string) {
		var its []map[string]any
		for _, p := range items {
			its = append(its, map[string]any{"plan": p, "quantity": 1})
		}
		d.must("POST", "/v1/subscriptions", map[string]any{"customer": cus, "start": start, "items": its})
	}
	sub(payer, plan("Pro", 5940, "month", "standard", "exclusive"), plan("お弁当", 1080, "month", "reduced", "exclusive"))
	sub(acme, plan("税込", 5500, "month", "standard", "inclusive"))
	sub(big, plan("年額", 120000, "year", "standard", "exclusive"))
	sub(never, plan("未払", 3300, "month", "standard", "inclusive"))
	// Customers with a balance get one-off invoices: a billing run fails
	// for a subscription whose customer has a balance (invoice.Issue writes
	// the balance transaction before the run inserts the invoice it names).
	oneOff := func(cus string, amount int64, rate string) {
		in := d.must("POST", "/v1/invoices", map[string]any{"customer": cus, "days_until_due": 30,
			"lines": []any{map[string]any{"description": "月額 〜 サービス", "unit_amount": amount, "tax_rate": rate}}})
		d.must("POST", "/v1/invoices/"+in["id"].(string)+"/finalize", nil)
	}

	pay := func(id string, max int) {
		n := 0
		for _, v := range d.must("GET", "/v1/invoices/"+id+"/charges", nil)["data"].([]any) {
			v := v.(map[string]any)
			if v["status"] == "pending" && v["provider_id"] != "" && n < max {
				d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
				n++
			}
		}
		if n == 0 {
			t.Fatalf("invoice %s has no live voucher to pay", id)
		}
	}
	for m := 1; m <= 12; m++ {
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": fmt.Sprintf("2027-%02d-01T12:00:00+09:00", m)})
		oneOff(small, 150, "exempt")
		oneOff(credit, 2000, "standard")
		invs := d.all("/v1/invoices")
		var open []map[string]any
		for _, in := range invs {
			if in["status"] == "open" || in["status"] == "uncollectible" {
				open = append(open, in)
			}
		}
		for _, in := range open {
			id, cus := in["id"].(string), in["customer"].(string)
			fresh := when(in["finalized_at"]).Month() == time.Month(m) && when(in["finalized_at"]).Year() == 2027
			switch {
			case cus == acme && fresh && m == 3:
				d.must("POST", "/v1/invoices/"+id+"/void", nil)
			case cus == acme && fresh && m == 5:
				d.must("POST", "/v1/invoices/"+id+"/mark_uncollectible", nil)
			case cus == never && m == 4 && in["status"] == "open":
				d.must("POST", "/v1/invoices/"+id+"/mark_uncollectible", nil)
			case cus == never && m == 6 && when(in["finalized_at"]).Month() == time.January:
				d.must("POST", "/v1/invoices/"+id+"/void", nil)
			case cus == payer && fresh && m == 7:
				lines := in["lines"].([]any)
				d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "reason": "order_change", "outcome": "reduce_amount_due",
					"lines": []any{map[string]any{"invoice_line": lines[0].(map[string]any)["id"], "amount": 1000},
						map[string]any{"invoice_line": lines[1].(map[string]any)["id"]}}})
				d.voucher(id) // the replacement, for the new amount
			case cus == never && m == 5 && in["status"] == "uncollectible" && when(in["finalized_at"]).Month() <= time.February:
				d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "amount": 1100, "reason": "product_unsatisfactory", "outcome": "reduce_amount_due"})
			case cus == credit && fresh && m == 2:
				v := d.voucher(id)
				d.must("POST", "/v1/invoices/"+id+"/void", nil)
				eventually(t, "voucher canceled", func() bool {
					return d.must("GET", "/v1/invoices/"+id, nil)["collection"].(map[string]any)["status"] == "canceled"
				})
				d.must("POST", "/sandbox/charges/"+v["provider_id"].(string)+"/mark_as_paid", nil)
				eventually(t, "credit", func() bool { return num(d.must("GET", "/v1/customers/"+credit, nil)["balance"]) == -2200 })
			}
		}
		for _, in := range invs {
			id, cus := in["id"].(string), in["customer"].(string)
			switch {
			case m == 8 && cus == credit && in["status"] == "paid" && when(in["finalized_at"]).Month() == time.July:
				d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "amount": 1100, "reason": "duplicate", "outcome": "customer_balance"})
			case m == 9 && cus == payer && in["status"] == "paid" && when(in["finalized_at"]).Month() == time.March:
				lines := in["lines"].([]any)
				d.must("POST", "/v1/credit_notes", map[string]any{"invoice": id, "reason": "order_change", "outcome": "out_of_band",
					"lines": []any{map[string]any{"invoice_line": lines[1].(map[string]any)["id"]}}})
			}
		}
		d.must("POST", "/v1/test_clock/advance", map[string]any{"to": fmt.Sprintf("2027-%02d-05T15:00:00+09:00", m)})
		var paying []string
		for _, in := range d.all("/v1/invoices") {
			id, cus := in["id"].(string), in["customer"].(string)
			if in["collection_status"] != "active" || (in["status"] != "open" && in["status"] != "uncollectible") || cus == never {
				continue
			}
			if cus == big && m == 1 {
				pay(id, 2) // the third part a month later, on its reissued voucher
				continue
			}
			pay(id, 99)
			paying = append(paying, id)
		}
		for _, id := range paying {
			eventually(t, "invoice "+id+" paid", func() bool { return d.invoiceStatus(id) == "paid" })
		}
	}
}

// expectations are what the API says about the year.
type expectations struct {
	invoices []map[string]any
	credits  []map[string]any // credit notes
	charges  []map[string]any
	balances int64
	moves    []map[string]any // balance transactions
}

func expect(d *daemon) *expectations {
	e := &expectations{invoices: d.all("/v1/invoices"), credits: d.all("/v1/credit_notes")}
	for _, in := range e.invoices {
		e.charges = append(e.charges, d.all("/v1/invoices/"+in["id"].(string)+"/charges")...)
	}
	for _, c := range d.all("/v1/customers") {
		e.balances += num(c["balance"])
	}
	for _, ev := range d.all("/v1/events?type=customer.balance_transaction.created") {
		e.moves = append(e.moves, ev["data"].(map[string]any))
	}
	return e
}

func inRange(p *time.Time, from, to string) bool {
	if p == nil {
		return false
	}
	day := p.In(time.FixedZone("JST", 9*3600)).Format("2006-01-02")
	return day >= from && day <= to
}

func readExport(t *testing.T, b []byte, shiftJIS bool) [][]string {
	t.Helper()
	if shiftJIS {
		var err error
		if b, err = japanese.ShiftJIS.NewDecoder().Bytes(b); err != nil {
			t.Fatal(err)
		}
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// balanced checks that the entries of an export balance: rows are grouped
// by key (the entry's number, or Yayoi's flags) and debit and credit amount
// columns summed. It returns each account's debits minus credits.
func balanced(t *testing.T, recs [][]string, key func(i int, r []string) string, dAcc, dAmt, cAcc, cAmt int) map[string]int64 {
	t.Helper()
	net := map[string]int64{}
	sums := map[string][2]int64{}
	for i, r := range recs {
		k := key(i, r)
		s := sums[k]
		if r[dAcc] != "" {
			net[r[dAcc]] += atoi64(r[dAmt])
			s[0] += atoi64(r[dAmt])
		}
		if r[cAcc] != "" {
			net[r[cAcc]] -= atoi64(r[cAmt])
			s[1] += atoi64(r[cAmt])
		}
		sums[k] = s
	}
	for k, s := range sums {
		if s[0] != s[1] || s[0] <= 0 {
			t.Errorf("entry %s: debits %d, credits %d", k, s[0], s[1])
		}
	}
	if len(sums) == 0 {
		t.Error("no entries")
	}
	return net
}

// TestExportYearOfBilling runs a simulated year through the real daemon and
// checks the exports against the API: the tables' totals, and a journal
// whose entries balance in every format and whose accounts hold what the
// invoices, vouchers and balances say. The HTTP route and the CLI give the
// same bytes.
func TestExportYearOfBilling(t *testing.T) {
	each(t, func(t *testing.T, dialect string) {
		d := startDaemon(t, dialect, map[string]string{"BILLING_SPLIT_VOUCHERS": "true"})
		yearOfBilling(t, d)
		e := expect(d)

		env := map[string]string{}
		getenv := func(k string) string { return env[k] }
		srv := struct{ URL string }{d.url} // the daemon's own route
		get := func(kind, query string) []byte {
			t.Helper()
			req, _ := http.NewRequest("GET", srv.URL+"/v1/exports/"+kind+"?"+query, nil)
			req.Header.Set("Authorization", "Bearer "+d.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s: %d %s", kind, query, resp.StatusCode, b)
			}
			return b
		}

		// The whole year: the journal's accounts against the API.
		year := "from=2027-01-01&to=2027-12-31"
		recs := readExport(t, get("journal", "format=csv&"+year), false)[1:]
		net := balanced(t, recs, func(_ int, r []string) string { return r[0] }, 7, 10, 12, 15)
		var receivable, sales, deposits, fees, badDebt, refunds int64
		var voids, writeOffs, carried, excess int
		for _, in := range e.invoices {
			switch in["status"] {
			case "open":
				receivable += num(in["amount_remaining"])
			case "void":
				receivable += num(in["starting_balance"]) - num(in["amount_paid"])
				voids++
			case "uncollectible":
				badDebt += num(in["amount_remaining"])
			}
			if in["finalized_at"] != nil {
				sales += num(in["total"])
			}
			if in["voided_at"] != nil { // what its credit notes left of it
				sales -= num(in["total"]) - num(in["pre_payment_credit_notes_amount"])
			}
			if in["marked_uncollectible_at"] != nil {
				writeOffs++
			}
			if num(in["carried_to_balance"]) > 0 {
				carried++
			}
		}
		for _, v := range e.charges {
			if v["status"] != "successful" {
				continue
			}
			if v["net"] == nil {
				deposits += num(v["amount"])
			} else {
				deposits += num(v["net"])
				fees += num(v["fee"]) + num(v["fee_vat"])
			}
		}
		for _, b := range e.moves {
			switch b["type"] {
			case "excess_payment":
				excess++
			case "proration_credit": // consideration given back: less sales
				sales += num(b["amount"])
			}
		}
		outcomes := map[string]int{}
		for _, c := range e.credits {
			sales -= num(c["total"])
			outcomes[c["outcome"].(string)]++
			if c["outcome"] == "out_of_band" {
				refunds += num(c["total"])
			}
		}
		if voids < 2 || writeOffs < 5 || carried < 3 || excess < 1 || outcomes["reduce_amount_due"] < 3 || outcomes["customer_balance"] < 1 || outcomes["out_of_band"] < 1 {
			t.Fatalf("the simulation lacks cases: %d voids, %d write-offs, %d carried, %d excess payments, credit notes %v", voids, writeOffs, carried, excess, outcomes)
		}
		for acc, want := range map[string]int64{"売掛金": receivable, "前受金": e.balances, "預け金": deposits, "支払手数料": fees, "売上高": -sales,
			"貸倒損失+償却債権取立益": badDebt, "未払金": -refunds} {
			got := net[acc]
			if acc == "貸倒損失+償却債権取立益" {
				got = net["貸倒損失"] + net["償却債権取立益"]
			}
			if got != want {
				t.Errorf("%s: journal %d, API %d", acc, got, want)
			}
		}
		var total int64
		for _, n := range net {
			total += n
		}
		if total != 0 || net["償却債権取立益"] == 0 {
			t.Errorf("accounts %v", net)
		}

		// The same journal in the import formats balances too.
		yayoiRecs := readExport(t, get("journal", "format=yayoi&"+year), true)
		slip := 0
		balanced(t, yayoiRecs, func(i int, r []string) string {
			if r[0] == "2000" || r[0] == "2110" {
				slip++
			}
			if len(r) != 25 {
				t.Fatalf("yayoi row %d has %d columns", i+1, len(r))
			}
			return strconv.Itoa(slip)
		}, 4, 8, 10, 14)
		mf := readExport(t, get("journal", "format=moneyforward&"+year), true)[1:]
		balanced(t, mf, func(_ int, r []string) string { return r[0] + r[1] }, 2, 8, 10, 16)
		fr := readExport(t, get("journal", "format=freee&"+year), true)[1:]
		balanced(t, fr, func(_ int, r []string) string { return r[0] + r[1] }, 2, 5, 7, 10)

		// A quarter: the tables and the journal against the API.
		from, to := "2027-04-01", "2027-06-30"
		quarter := "format=csv&from=" + from + "&to=" + to
		var n, qTotal, qTax, qVoided, qGross, qNet, qFees, qMoved int64
		for _, in := range e.invoices {
			if inRange(when(in["finalized_at"]), from, to) {
				n++
				qTotal += num(in["total"])
				qTax += num(in["tax"])
			}
			if inRange(when(in["voided_at"]), from, to) {
				qVoided += num(in["total"]) - num(in["pre_payment_credit_notes_amount"])
			}
		}
		var qCredited int64
		for _, c := range e.credits {
			if inRange(when(c["created"]), from, to) {
				qCredited += num(c["total"])
			}
		}
		rows := readExport(t, get("invoices", quarter), false)[1:]
		var gotTotal, gotTax int64
		for _, r := range rows {
			gotTotal += atoi64(r[15])
			gotTax += atoi64(r[14])
		}
		if int64(len(rows)) != n || gotTotal != qTotal || gotTax != qTax {
			t.Errorf("invoices %s–%s: %d rows, total %d, tax %d; API %d, %d, %d", from, to, len(rows), gotTotal, gotTax, n, qTotal, qTax)
		}
		n = 0
		for _, v := range e.charges {
			if v["status"] == "successful" && inRange(when(v["paid_at"]), from, to) {
				n++
				qGross += num(v["amount"])
				qNet += num(v["net"])
				qFees += num(v["fee"]) + num(v["fee_vat"])
			}
		}
		rows = readExport(t, get("payments", quarter), false)[1:]
		var g, nt, f int64
		for _, r := range rows {
			g, nt, f = g+atoi64(r[9]), nt+atoi64(r[12]), f+atoi64(r[10])+atoi64(r[11])
		}
		if int64(len(rows)) != n || g != qGross || nt != qNet || f != qFees {
			t.Errorf("payments %s–%s: %d rows gross %d net %d fees %d; API %d, %d, %d, %d", from, to, len(rows), g, nt, f, n, qGross, qNet, qFees)
		}
		n = 0
		for _, b := range e.moves {
			if inRange(when(b["created"]), from, to) {
				n++
				qMoved += num(b["amount"])
			}
		}
		rows = readExport(t, get("balance", quarter), false)[1:]
		var moved int64
		for _, r := range rows {
			moved += atoi64(r[5])
		}
		if int64(len(rows)) != n || moved != qMoved {
			t.Errorf("balance %s–%s: %d rows, %d moved; API %d, %d", from, to, len(rows), moved, n, qMoved)
		}
		qnet := balanced(t, readExport(t, get("journal", quarter), false)[1:], func(_ int, r []string) string { return r[0] }, 7, 10, 12, 15)
		if qCredited == 0 {
			t.Errorf("no credit note in %s–%s", from, to)
		}
		if qnet["売上高"] != -(qTotal-qVoided-qCredited) || qnet["預け金"] != qGross-qFees || qnet["支払手数料"] != qFees {
			t.Errorf("journal %s–%s: 売上高 %d 預け金 %d 支払手数料 %d; API %d, %d, %d", from, to, qnet["売上高"], qnet["預け金"], qnet["支払手数料"], -(qTotal - qVoided - qCredited), qGross-qFees, qFees)
		}

		// The credit notes of the year: the table against the API, and their
		// entries alone balance.
		rows = readExport(t, get("credit_notes", "format=csv&"+year), false)[1:]
		var cTotal, wantCTotal int64
		for _, r := range rows {
			cTotal += atoi64(r[19])
		}
		for _, c := range e.credits {
			wantCTotal += num(c["total"])
		}
		if len(rows) != len(e.credits) || cTotal != wantCTotal {
			t.Errorf("credit notes: %d rows, total %d; API %d, %d", len(rows), cTotal, len(e.credits), wantCTotal)
		}
		cnet := balanced(t, readExport(t, get("credit_notes", "format=moneyforward&"+year), true)[1:], func(_ int, r []string) string { return r[0] + r[1] }, 2, 8, 10, 16)
		if cnet["売上高"] != wantCTotal || cnet["未払金"] != -refunds {
			t.Errorf("credit note entries: %v", cnet)
		}

		// The CLI writes the same file as the API (the daemon stopped first:
		// a SQLite file has one user at a time).
		want := get("journal", "format=yayoi&"+year)
		d.m.Close()
		out := filepath.Join(t.TempDir(), "journal.csv")
		cli := &Main{Config: d.m.Config, Stdout: io.Discard, Stderr: io.Discard}
		if err := cli.export(context.Background(), []string{"--kind", "journal", "--format", "yayoi", "--from", "2027-01-01", "--to", "2027-12-31", "--out", out}, getenv); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
			t.Errorf("the CLI's file differs from the API's (%d and %d bytes, %v)", len(got), len(want), err)
		}
	})
}

func TestExportCLIErrors(t *testing.T) {
	d := startDaemon(t, "sqlite", nil)
	d.m.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "ledger", "--from", "2027-01-01", "--to", "2027-01-31"}, "--kind must be one of"},
		{[]string{"--kind", "journal", "--format", "xls", "--from", "2027-01-01", "--to", "2027-01-31"}, "--format must be one of"},
		{[]string{"--kind", "journal", "--from", "2027-01-01"}, "--to is required"},
		{[]string{"--kind", "journal", "--from", "2027-02-01", "--to", "2027-01-31"}, "must not be before"},
	} {
		m := &Main{Config: d.m.Config, Stdout: io.Discard, Stderr: io.Discard}
		err := m.export(context.Background(), c.args, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestExportRouteNeedsTheKey(t *testing.T) {
	d := startDaemon(t, "sqlite", nil)
	srv := struct{ URL string }{d.url}
	resp, err := http.Get(srv.URL + "/v1/exports/journal?from=2027-01-01&to=2027-01-31")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a key: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/exports/journal?format=yayoi&from=2027-01-01&to=2027-01-32", nil)
	req.Header.Set("Authorization", "Bearer "+d.key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"param": "to"`) {
		t.Fatalf("bad day: %d %s", resp.StatusCode, b)
	}
}
