package mail

import (
	"bytes"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"billingd/billing"
	"billingd/templates"
)

// Kind names an e-mail billingd sends.
type Kind string

// The kinds of e-mail.
const (
	KindInvoice  Kind = "invoice"  // an invoice was finalized: amount, deadline, payment codes; the PDF is attached
	KindReminder Kind = "reminder" // the voucher expires in DaysLeft days
	KindReissued Kind = "reissued" // a new voucher replaces one that expired
	KindReceipt  Kind = "receipt"  // payment received; the receipt PDF is attached
	KindVoided   Kind = "voided"   // the invoice was voided
	// KindCreditNote: a credit note (適格返還請求書) was issued; its PDF is
	// attached. CreditOutcome says what became of the amount: with
	// reduce_amount_due, Amount is what is still due (0: nothing) and the
	// new voucher's codes and deadline follow.
	KindCreditNote Kind = "credit_note"
	// KindOverdue: the invoice's last voucher expired unpaid; Amount is what
	// is still due and SubscriptionOutcome what became of the subscription.
	KindOverdue Kind = "overdue"
)

// Kinds lists every kind, in the order of an invoice's life.
var Kinds = []Kind{KindInvoice, KindReminder, KindReissued, KindReceipt, KindVoided, KindCreditNote, KindOverdue}

// Languages lists the languages there are templates for; the first is the
// default for any other language.
var Languages = []string{"ja", "en"}

// MailData is what the templates show. Amounts are integer yen and times are
// shown in Asia/Tokyo whatever their location.
type MailData struct {
	Language      string                // "ja" or "en"; anything else renders Japanese
	CustomerName  string                // shown as "<name> 様" / "Dear <name>,"
	IssuerName    string                // the operator, as on the invoice
	InvoiceNumber string                // e.g. INV-2027-000123
	Amount        int64                 // due (invoice, reminder, reissued, voided) or paid (receipt)
	Deadline      time.Time             // when the voucher expires
	DaysLeft      int                   // reminder: days until Deadline
	PaidAt        time.Time             // receipt: when the payment arrived
	PaymentCodes  []billing.PaymentCode // one per store, or one with no store for all
	// Parts, for an invoice collected in parts (above the provider's
	// maximum for one voucher): each part's amount, deadline and codes.
	// The templates list them instead of PaymentCodes.
	Parts  []Part
	PayURL string // the customer's payment page
	// Credit notes (KindCreditNote).
	CreditNoteNumber string // e.g. CN-2027-000001
	CreditAmount     int64  // the credit note's total, tax included
	CreditOutcome    string // reduce_amount_due, customer_balance or out_of_band
	// SubscriptionOutcome (KindOverdue) is what became of the invoice's
	// subscription: past_due, unpaid, canceled, or "" for a one-off invoice.
	SubscriptionOutcome string
}

// Part is one voucher of an invoice collected in parts.
type Part struct {
	Number       int // 1, 2, …
	Amount       int64
	Deadline     time.Time
	PaymentCodes []billing.PaymentCode
}

// page is what a template executes on: the data and the rendered subject.
type page struct {
	MailData
	Subject string
}

// Render returns the subject and the plain-text and HTML bodies of the
// e-mail of the given kind in data.Language.
func Render(kind Kind, data MailData) (subject, text, html string, err error) {
	set, ok := sets[data.Language]
	if !ok {
		set = sets[Languages[0]]
	}
	if set.text.Lookup(string(kind)+".text") == nil {
		return "", "", "", billing.Errorf(billing.EINVALID, "mail: unknown kind %q", kind)
	}
	var b bytes.Buffer
	p := page{MailData: data}
	if err := set.text.ExecuteTemplate(&b, string(kind)+".subject", p); err != nil {
		return "", "", "", err
	}
	p.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := set.text.ExecuteTemplate(&b, string(kind)+".text", p); err != nil {
		return "", "", "", err
	}
	text = strings.TrimSpace(b.String()) + "\n"
	b.Reset()
	if err := set.html.ExecuteTemplate(&b, string(kind)+".html", p); err != nil {
		return "", "", "", err
	}
	return p.Subject, text, b.String(), nil
}

// templateSet is one language's parsed templates.
type templateSet struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// sets holds the templates by language, parsed once at start-up; a broken
// template stops the program there rather than at the first e-mail.
var sets = func() map[string]templateSet {
	m := make(map[string]templateSet)
	for _, lang := range Languages {
		funcs := map[string]any{
			"yen":   func(amount int64) string { return FormatYen(amount, lang) },
			"date":  func(t time.Time) string { return FormatTime(t, lang) },
			"store": func(store string) string { return storeName(store, lang) },
			"button": func(url, label string) any {
				return struct{ PayURL, Label string }{url, label}
			},
		}
		s := templateSet{
			text: texttemplate.Must(texttemplate.New("").Funcs(funcs).ParseFS(templates.FS, "mail/"+lang+".txt")),
			html: htmltemplate.Must(htmltemplate.New("").Funcs(funcs).ParseFS(templates.FS, "mail/"+lang+".html")),
		}
		for _, k := range Kinds {
			if s.text.Lookup(string(k)+".subject") == nil || s.text.Lookup(string(k)+".text") == nil || s.html.Lookup(string(k)+".html") == nil {
				panic("mail: templates for " + lang + " lack kind " + string(k))
			}
		}
		m[lang] = s
	}
	return m
}()

// tokyo is where dates are shown.
var tokyo = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		return time.FixedZone("JST", 9*3600)
	}
	return loc
}()

// FormatYen formats an amount of yen with thousands separators: 12,345円 in
// Japanese ("ja"), ¥12,345 in English.
func FormatYen(amount int64, lang string) string {
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	digits := strconv.FormatInt(amount, 10)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if lang == "en" {
		return sign + "¥" + b.String()
	}
	return sign + b.String() + "円"
}

// FormatTime formats t in Japan time to the minute: 2027年1月31日 23:59 in
// Japanese, 31 Jan 2027 23:59 JST in English. The zero time gives "".
func FormatTime(t time.Time, lang string) string {
	if t.IsZero() {
		return ""
	}
	if lang == "en" {
		return t.In(tokyo).Format("2 Jan 2006 15:04") + " JST"
	}
	return t.In(tokyo).Format("2006年1月2日 15:04")
}

// storeNames are the stores' names in Japanese and English. A code with no
// store works at every store the provider serves.
var storeNames = map[string][2]string{
	"":           {"各コンビニ共通", "All convenience stores"},
	"familymart": {"ファミリーマート", "FamilyMart"},
	"lawson":     {"ローソン", "Lawson"},
	"ministop":   {"ミニストップ", "Ministop"},
	"seicomart":  {"セイコーマート", "Seicomart"},
}

// storeName is how a payment code's store is shown.
func storeName(store, lang string) string {
	n, ok := storeNames[store]
	switch {
	case !ok:
		return store
	case lang == "en":
		return n[1]
	}
	return n[0]
}
