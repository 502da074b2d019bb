package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"billingd/billing/store"
)

// headless returns a chromedp context driving Debian's chromium in headless
// mode. Without chromium the test is skipped, unless
// BILLING_TEST_BROWSER=require (set by CI, which installs it).
func headless(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("BILLING_TEST_BROWSER") == "require" {
			t.Fatal("chromium is not installed (BILLING_TEST_BROWSER=require)")
		}
		t.Skip("chromium is not installed: the browser test is skipped (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(390, 844)) // a phone's viewport
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// TestPaymentPageInBrowser loads the customer's payment page in a real
// headless browser at a phone's width: it shows the payment code, and in
// sandbox mode the "paid" button turns the invoice paid.
func TestPaymentPageInBrowser(t *testing.T) {
	ctx := headless(t)
	d := startDaemon(t, store.SQLite, nil)
	id := d.oneOff(7700, nil)
	v := d.voucher(id)
	url := d.must("GET", "/v1/invoices/"+id, nil)["hosted_invoice_url"].(string)
	code := v["payment_codes"].([]any)[0].(map[string]any)["payment_code"].(string)

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	shown := browse(t, ctx, chromedp.Text(chromedp.CSS(".payment-code")))
	status := browse(t, ctx, chromedp.Text(chromedp.ID("status")))
	// Reads well on a phone: nothing wider than the screen.
	overflow := browse(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if strings.TrimSpace(shown) != code || strings.TrimSpace(status) != "未払い" || overflow {
		t.Fatalf("page shows code %q (want %q), status %q, horizontal overflow %v", shown, code, status, overflow)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("simulate-paid")), chromedp.WaitVisible(chromedp.CSS(".status-paid"))); err != nil {
		t.Fatal(err)
	}
	status = browse(t, ctx, chromedp.Text(chromedp.ID("status")))
	if strings.TrimSpace(status) != "お支払い済み" || d.invoiceStatus(id) != "paid" {
		t.Fatalf("after clicking paid: page %q, invoice %s", status, d.invoiceStatus(id))
	}
}

// browse runs one browser action that yields a value.
func browse[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
