package export

import (
	"fmt"
	"strings"
	"time"

	"billingd/billing"
)

// Kind selects what an export contains.
type Kind string

// Kinds of export.
const (
	// Invoices are the invoices finalized in the range: one row per invoice
	// in csv, one sales entry per invoice in the accounting formats.
	Invoices Kind = "invoices"
	// Payments are the vouchers paid in the range, with the provider's fee.
	Payments Kind = "payments"
	// Balance are the customer balance movements made in the range.
	Balance Kind = "balance"
	// CreditNotes are the credit notes (適格返還請求書) issued in the range:
	// one row per credit note in csv, one reversing entry per credit note in
	// the accounting formats.
	CreditNotes Kind = "credit_notes"
	// Journal is the double-entry journal of everything in the range.
	Journal Kind = "journal"
)

// Kinds lists every kind, in documentation order.
var Kinds = []Kind{Invoices, Payments, Balance, CreditNotes, Journal}

// Format selects the file layout and encoding.
type Format string

// Formats.
const (
	// CSV is UTF-8 with a header row (optionally with a BOM for Excel).
	CSV Format = "csv"
	// Yayoi is 弥生会計's 仕訳日記帳 import: Shift_JIS, no header, 25 columns.
	Yayoi Format = "yayoi"
	// Freee is freee会計's 取引 import for invoices and payments and its
	// 仕訳 (振替伝票) import for balance movements and the journal:
	// Shift_JIS, header row.
	Freee Format = "freee"
	// MoneyForward is マネーフォワード クラウド会計's 仕訳帳 import:
	// Shift_JIS, header row, 27 columns.
	MoneyForward Format = "moneyforward"
)

// Formats lists every format.
var Formats = []Format{CSV, Yayoi, Freee, MoneyForward}

// DefaultTimeout bounds an export that does not bring its own deadline.
const DefaultTimeout = 30 * time.Minute

// Options say what to export and how.
type Options struct {
	Kind   Kind
	Format Format
	// From and To are calendar days in Location, both included: an event
	// belongs to the export if it happened from 00:00 on From to 24:00 on To.
	// Only their dates count; ParseDate makes them.
	From, To time.Time
	// Location is the time zone of the days and of every date written
	// (Asia/Tokyo if nil).
	Location *time.Location
	// BOM starts a csv export with a UTF-8 byte order mark, so that Excel
	// reads it as UTF-8. The other formats are Shift_JIS and never have one.
	BOM bool
	// Accounts names the accounts and tax categories; empty fields take the
	// defaults (see DefaultAccounts).
	Accounts Accounts
	// Timeout bounds the export's query when ctx has no deadline
	// (DefaultTimeout if zero).
	Timeout time.Duration
}

// Accounts are the names the accounting formats write: 勘定科目, 補助科目 and
// 税区分. They must match the chart of accounts of the software the file is
// imported into, so each is a setting (see Env for the variables). Empty
// fields take the defaults of DefaultAccounts for the format.
type Accounts struct {
	Receivable         string // 売掛金: what customers owe on finalized invoices
	ReceivableSub      string
	Sales              string // 売上高
	SalesSub           string
	Provider           string // 預け金: money the payment provider holds for the operator
	ProviderSub        string // "{provider}" is replaced by the provider's name (sandbox, opn, stripe)
	Fees               string // 支払手数料: the provider's fee
	FeesSub            string
	CustomerBalance    string // 前受金: the customers' balances (credit when negative, carried amounts when positive)
	CustomerBalanceSub string
	BadDebt            string // 貸倒損失: invoices marked uncollectible
	Recovery           string // 償却債権取立益: payments on invoices already written off
	Refund             string // 未払金: refunds made outside billingd (credit notes with outcome out_of_band)
	RefundSub          string

	TaxSales10     string // sales at 10 %
	TaxSales8      string // sales at the reduced 8 %
	TaxSalesExempt string // 非課税 sales (and their returns)
	TaxReturn10    string // sales returned or reduced by a credit note, at 10 %
	TaxReturn8     string // sales returned or reduced by a credit note, at 8 %
	TaxFees        string // the provider's fee (a taxable purchase at 10 %)
	TaxBadDebt10   string // write-off of sales at 10 %
	TaxBadDebt8    string // write-off of sales at 8 %
	TaxRecovery10  string // recovery of written-off sales at 10 %
	TaxRecovery8   string // recovery of written-off sales at 8 %
	TaxNone        string // lines outside consumption tax (売掛金, 預け金, 前受金): 対象外
}

// accountVar ties an environment variable to an Accounts field.
type accountVar struct {
	Name string
	Ptr  *string
}

// vars lists the fields of a with their environment variables.
func (a *Accounts) vars() []accountVar {
	return []accountVar{
		{"BILLING_ACCOUNT_RECEIVABLE", &a.Receivable},
		{"BILLING_ACCOUNT_RECEIVABLE_SUB", &a.ReceivableSub},
		{"BILLING_ACCOUNT_SALES", &a.Sales},
		{"BILLING_ACCOUNT_SALES_SUB", &a.SalesSub},
		{"BILLING_ACCOUNT_PROVIDER", &a.Provider},
		{"BILLING_ACCOUNT_PROVIDER_SUB", &a.ProviderSub},
		{"BILLING_ACCOUNT_FEES", &a.Fees},
		{"BILLING_ACCOUNT_FEES_SUB", &a.FeesSub},
		{"BILLING_ACCOUNT_CUSTOMER_BALANCE", &a.CustomerBalance},
		{"BILLING_ACCOUNT_CUSTOMER_BALANCE_SUB", &a.CustomerBalanceSub},
		{"BILLING_ACCOUNT_BAD_DEBT", &a.BadDebt},
		{"BILLING_ACCOUNT_RECOVERY", &a.Recovery},
		{"BILLING_ACCOUNT_REFUND", &a.Refund},
		{"BILLING_ACCOUNT_REFUND_SUB", &a.RefundSub},
		{"BILLING_TAX_SALES_10", &a.TaxSales10},
		{"BILLING_TAX_SALES_8", &a.TaxSales8},
		{"BILLING_TAX_SALES_EXEMPT", &a.TaxSalesExempt},
		{"BILLING_TAX_SALES_RETURN_10", &a.TaxReturn10},
		{"BILLING_TAX_SALES_RETURN_8", &a.TaxReturn8},
		{"BILLING_TAX_FEES", &a.TaxFees},
		{"BILLING_TAX_BAD_DEBT_10", &a.TaxBadDebt10},
		{"BILLING_TAX_BAD_DEBT_8", &a.TaxBadDebt8},
		{"BILLING_TAX_RECOVERY_10", &a.TaxRecovery10},
		{"BILLING_TAX_RECOVERY_8", &a.TaxRecovery8},
		{"BILLING_TAX_NONE", &a.TaxNone},
	}
}

// AccountsFromEnv reads the account settings through getenv (os.Getenv in
// the daemon). Unset variables leave the field empty, that is, the format's
// default.
func AccountsFromEnv(getenv func(string) string) Accounts {
	var a Accounts
	for _, v := range a.vars() {
		*v.Ptr = strings.TrimSpace(getenv(v.Name))
	}
	return a
}

// Env returns the account settings as VAR=value lines, for `billingd config`
// style dumps; empty values are the format's defaults.
func (a Accounts) Env() string {
	var b strings.Builder
	for _, v := range a.vars() {
		fmt.Fprintf(&b, "%s=%s\n", v.Name, *v.Ptr)
	}
	return b.String()
}

// DefaultAccounts returns the names written when no setting overrides them.
// Account names are the same for every format; tax-category names follow
// each program's own list (Money Forward abbreviates them).
func DefaultAccounts(f Format) Accounts {
	a := Accounts{
		Receivable: "売掛金", Sales: "売上高", Provider: "預け金", Fees: "支払手数料",
		CustomerBalance: "前受金", BadDebt: "貸倒損失", Recovery: "償却債権取立益", Refund: "未払金",
		TaxNone: "対象外",
	}
	switch f {
	case Yayoi:
		a.TaxSales10, a.TaxSales8, a.TaxSalesExempt = "課税売上込10%", "課税売上込軽減8%", "非課売上"
		a.TaxReturn10, a.TaxReturn8 = "課税売上返還込10%", "課税売上返還込軽減8%"
		a.TaxFees = "課対仕入込10%適格"
		a.TaxBadDebt10, a.TaxBadDebt8 = "課税売上貸倒10%", "課税売上貸倒軽減8%"
		a.TaxRecovery10, a.TaxRecovery8 = "課税売上貸倒回収10%", "課税売上貸倒回収軽減8%"
	case MoneyForward:
		a.TaxSales10, a.TaxSales8, a.TaxSalesExempt = "課売 10%", "課売 8%(軽)", "非売"
		a.TaxReturn10, a.TaxReturn8 = "課売返 10%", "課売返 8%(軽)"
		a.TaxFees = "課仕 10%"
		a.TaxBadDebt10, a.TaxBadDebt8 = "貸倒 10%", "貸倒 8%(軽)"
		a.TaxRecovery10, a.TaxRecovery8 = "回収 10%", "回収 8%(軽)"
	default: // csv and freee
		a.TaxSales10, a.TaxSales8, a.TaxSalesExempt = "課税売上10%", "課税売上8%(軽)", "非課売上"
		a.TaxReturn10, a.TaxReturn8 = "課税売返10%", "課税売返8%(軽)"
		a.TaxFees = "課対仕入10%"
		a.TaxBadDebt10, a.TaxBadDebt8 = "課税売上貸倒10%", "課税売上貸倒8%(軽)"
		a.TaxRecovery10, a.TaxRecovery8 = "課税売上貸倒回収10%", "課税売上貸倒回収8%(軽)"
	}
	return a
}

// withDefaults fills the empty fields of a from the format's defaults.
func (a Accounts) withDefaults(f Format) Accounts {
	d := DefaultAccounts(f)
	dv := d.vars()
	for i, v := range a.vars() {
		if *v.Ptr == "" {
			*v.Ptr = *dv[i].Ptr
		}
	}
	return a
}

// sales returns the tax category of sales at rate r.
func (a *Accounts) sales(r billing.TaxRate) string {
	switch r {
	case billing.TaxStandard:
		return a.TaxSales10
	case billing.TaxReduced:
		return a.TaxSales8
	}
	return a.TaxSalesExempt
}

// salesReturn returns the tax category of sales at rate r returned or
// reduced by a credit note.
func (a *Accounts) salesReturn(r billing.TaxRate) string {
	switch r {
	case billing.TaxStandard:
		return a.TaxReturn10
	case billing.TaxReduced:
		return a.TaxReturn8
	}
	return a.TaxSalesExempt
}

// badDebt returns the tax category of a write-off of sales at rate r.
func (a *Accounts) badDebt(r billing.TaxRate) string {
	switch r {
	case billing.TaxStandard:
		return a.TaxBadDebt10
	case billing.TaxReduced:
		return a.TaxBadDebt8
	}
	return a.TaxSalesExempt
}

// recovery returns the tax category of a recovered write-off at rate r.
func (a *Accounts) recovery(r billing.TaxRate) string {
	switch r {
	case billing.TaxStandard:
		return a.TaxRecovery10
	case billing.TaxReduced:
		return a.TaxRecovery8
	}
	return a.TaxSalesExempt
}

// ParseDate parses a calendar day (YYYY-MM-DD, or YYYY/MM/DD as accounting
// software writes it) in loc. Errors are EINVALID naming param.
func ParseDate(param, s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = tokyo()
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, billing.Invalid(param, "%s is required: a day like 2027-01-31", param)
	}
	t, err := time.ParseInLocation("2006-01-02", strings.ReplaceAll(s, "/", "-"), loc)
	if err != nil {
		return time.Time{}, billing.Invalid(param, "%s must be a day like 2027-01-31, got %q", param, s)
	}
	return t, nil
}

// ParseKind checks a kind named by a request; errors are EINVALID naming param.
func ParseKind(param, s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", billing.Invalid(param, "%s must be one of invoices, payments, balance, credit_notes, journal, got %q", param, s)
}

// ParseFormat checks a format named by a request (csv if empty); errors are
// EINVALID naming param.
func ParseFormat(param, s string) (Format, error) {
	if s == "" {
		return CSV, nil
	}
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", billing.Invalid(param, "%s must be one of csv, yayoi, freee, moneyforward, got %q", param, s)
}

// maxDays caps the range of one export.
const maxDays = 3700

// normalize checks o and fills the defaults. Errors are EINVALID naming the
// request parameter (kind, format, from, to).
func (o Options) normalize() (Options, error) {
	if o.Location == nil {
		o.Location = tokyo()
	}
	if _, err := ParseKind("kind", string(o.Kind)); err != nil {
		return o, err
	}
	f, err := ParseFormat("format", string(o.Format))
	if err != nil {
		return o, err
	}
	o.Format = f
	if o.From.IsZero() {
		return o, billing.Invalid("from", "from is required: the first day, like 2027-01-01")
	}
	if o.To.IsZero() {
		return o, billing.Invalid("to", "to is required: the last day, included, like 2027-12-31")
	}
	y, m, d := o.From.Date()
	o.From = time.Date(y, m, d, 0, 0, 0, 0, o.Location)
	y, m, d = o.To.Date()
	o.To = time.Date(y, m, d, 0, 0, 0, 0, o.Location)
	if o.To.Before(o.From) {
		return o, billing.Invalid("to", "to (%s) must not be before from (%s)", o.To.Format("2006-01-02"), o.From.Format("2006-01-02"))
	}
	if o.To.Sub(o.From) > maxDays*24*time.Hour {
		return o, billing.Invalid("to", "an export covers at most %d days", maxDays)
	}
	if o.BOM && o.Format != CSV {
		return o, billing.Invalid("bom", "bom applies to format=csv only; %s files are Shift_JIS", o.Format)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	o.Accounts = o.Accounts.withDefaults(o.Format)
	return o, nil
}

// bounds returns the range as instants: [start, end).
func (o Options) bounds() (time.Time, time.Time) {
	y, m, d := o.To.Date()
	return o.From, time.Date(y, m, d+1, 0, 0, 0, 0, o.Location)
}

func tokyo() *time.Location {
	return billing.DefaultSettings().Location
}
