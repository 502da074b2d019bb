package pdf

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"billingd/billing"
)

// labels are the fixed words of the documents in one language.
type labels struct {
	invoice, receipt                       string
	number, issued, period, due, received  string
	intro, receiptIntro, receiptFor        string
	amountDue, amountReceived              string
	description, qty, unitPrice, rate, amt string
	subtotalExcl, subtotalIncl, total      string
	balance, credited, paid, payable       string
	taxable, exempt, tax, reducedLegend    string
	breakdown, registration                string
	payHeading, payAmount, payDeadline     string
	part, store, code, confirmation        string
	stores, instructions, payPage, method  string
	konbini, allStores                     string
	billTo, receivedFrom                   string // above the recipient, in English only
	storeNames                             map[string]string
	// Credit notes (適格返還請求書).
	creditNote, cnNumber, refundDate       string
	origNumber, origDate, origPeriod       string
	cnIntro, cnAmount, cnTotal, adjustment string
	reason, outcome, dueAfter, memo        string
	reasons, outcomes                      map[string]string
}

var ja = labels{
	invoice: "請求書", receipt: "領収書",
	number: "請求書番号", issued: "発行日", period: "ご請求期間", due: "お支払期限", received: "領収日",
	intro:        "下記のとおりご請求申し上げます。",
	receiptIntro: "上記の金額を正に領収いたしました。",
	receiptFor:   "但し 請求書 %s のお支払いとして",
	amountDue:    "ご請求金額（税込）", amountReceived: "領収金額（税込）",
	description: "品目", qty: "数量", unitPrice: "単価", rate: "税率", amt: "金額",
	subtotalExcl: "小計（税抜）", subtotalIncl: "小計（税込）", total: "合計（税込）",
	balance: "前回からの繰越・充当", credited: "返還（値引き・返品等）", paid: "お支払済", payable: "ご請求金額",
	taxable: "%d%%対象（税抜）", exempt: "非課税", tax: "消費税", reducedLegend: "※は軽減税率対象",
	breakdown: "内訳", registration: "登録番号",
	payHeading: "お支払い方法：コンビニ払い", payAmount: "お支払金額", payDeadline: "お支払期限",
	part: "お支払い %d / %d", store: "コンビニ", code: "お支払い番号", confirmation: "確認番号",
	stores:       "ご利用いただけるコンビニ：",
	instructions: "お支払い手順：", payPage: "お支払いページ", method: "お支払い方法",
	konbini: "コンビニ払い", allStores: "各店共通",
	storeNames: map[string]string{
		"familymart": "ファミリーマート", "lawson": "ローソン", "ministop": "ミニストップ", "seicomart": "セイコーマート",
	},
	creditNote: "返還請求書", cnNumber: "返還請求書番号", refundDate: "返還日",
	origNumber: "元の請求書番号", origDate: "元の請求書の発行日", origPeriod: "元のご請求期間",
	cnIntro:  "下記のとおり返還いたします。",
	cnAmount: "返還金額（税込）", cnTotal: "返還額合計（税込）", adjustment: "請求書 %s の値引き",
	reason: "返還理由", outcome: "精算方法", dueAfter: "減額後のご請求金額", memo: "備考",
	reasons: map[string]string{
		"duplicate": "重複請求", "fraudulent": "不正利用", "order_change": "ご注文内容の変更", "product_unsatisfactory": "商品・サービスへのご不満",
	},
	outcomes: map[string]string{
		"reduce_amount_due": "ご請求金額から減額", "customer_balance": "次回以降のご請求に充当", "out_of_band": "返金済み",
	},
}

var en = labels{
	invoice: "INVOICE", receipt: "RECEIPT",
	number: "Invoice number", issued: "Issue date", period: "Billing period", due: "Payment due", received: "Date received",
	intro:        "Please pay the amount below.",
	receiptIntro: "We acknowledge receipt of the amount above.",
	receiptFor:   "For payment of invoice %s",
	amountDue:    "Amount due (tax incl.)", amountReceived: "Amount received (tax incl.)",
	description: "Description", qty: "Qty", unitPrice: "Unit price", rate: "Tax", amt: "Amount",
	subtotalExcl: "Subtotal (excl. tax)", subtotalIncl: "Subtotal (incl. tax)", total: "Total (incl. tax)",
	balance: "Balance carried or applied", credited: "Credit notes", paid: "Paid", payable: "Amount due",
	taxable: "%d%% taxable (excl. tax)", exempt: "Tax exempt", tax: "Consumption tax", reducedLegend: "※ Reduced tax rate (8%) item",
	breakdown: "Breakdown", registration: "Registration number",
	payHeading: "How to pay: at a convenience store (Konbini)", payAmount: "Amount", payDeadline: "Pay by",
	part: "Payment %d of %d", store: "Store", code: "Payment code", confirmation: "Confirmation number",
	stores:       "Pay at: ",
	instructions: "Instructions: ", payPage: "Payment page", method: "Payment method",
	konbini: "Convenience store payment", allStores: "All stores",
	billTo: "Bill to", receivedFrom: "Received from",
	storeNames: map[string]string{
		"familymart": "FamilyMart", "lawson": "Lawson", "ministop": "Ministop", "seicomart": "Seicomart",
	},
	creditNote: "CREDIT NOTE", cnNumber: "Credit note number", refundDate: "Refund date",
	origNumber: "Original invoice", origDate: "Original invoice date", origPeriod: "Original billing period",
	cnIntro:  "We credit you the amount below.",
	cnAmount: "Amount credited (tax incl.)", cnTotal: "Total credited (tax incl.)", adjustment: "Adjustment to invoice %s",
	reason: "Reason", outcome: "Settlement", dueAfter: "Amount due after this credit", memo: "Note",
	reasons: map[string]string{
		"duplicate": "Duplicate charge", "fraudulent": "Fraudulent charge", "order_change": "Order changed", "product_unsatisfactory": "Product or service unsatisfactory",
	},
	outcomes: map[string]string{
		"reduce_amount_due": "Deducted from the amount due", "customer_balance": "Credited to your balance for future invoices", "out_of_band": "Refunded",
	},
}

// storeOrder is the order stores are listed in.
var storeOrder = []string{"familymart", "lawson", "ministop", "seicomart"}

func labelsFor(lang string) *labels {
	if lang == "en" {
		return &en
	}
	return &ja
}

// yen formats an amount of yen: ¥1,234 or -¥1,234.
func yen(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := strconv.FormatInt(v, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + "¥" + b.String()
}

// date formats a day: 2027年1月31日 or Jan 31, 2027.
func (l *labels) date(t time.Time) string {
	if l == &en {
		return t.Format("Jan 2, 2006")
	}
	return fmt.Sprintf("%d年%d月%d日", t.Year(), t.Month(), t.Day())
}

// dateTime formats a deadline to the minute: 2027年1月31日 23:59 or
// Jan 31, 2027 23:59 JST.
func (l *labels) dateTime(t time.Time) string {
	if l == &en {
		return t.Format("Jan 2, 2006 15:04 MST")
	}
	return l.date(t) + t.Format(" 15:04")
}

// span formats a billing period whose end is exclusive (the start of the
// next period) as its first and last days.
func (l *labels) span(start, end time.Time) string {
	last := end.Add(-time.Nanosecond)
	if l == &en {
		return l.date(start) + " – " + l.date(last)
	}
	return l.date(start) + "〜" + l.date(last)
}

// rateLabel is a line's tax rate as printed in the lines table.
func (l *labels) rateLabel(r billing.TaxRate) string {
	if r == billing.TaxExempt {
		return l.exempt
	}
	return fmt.Sprintf("%d%%", r.Percent())
}

// corporate are the words that make a Japanese recipient a company or an
// organisation, addressed 御中 rather than 様.
var corporate = []string{"株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "法人", "組合", "協会",
	"(株)", "（株）", "㈱", "(有)", "（有）", "㈲", "事務所"}

// honorific picks 御中 for an organisation, 様 for a person.
func honorific(name string) string {
	for _, w := range corporate {
		if strings.Contains(name, w) {
			return "御中"
		}
	}
	return "様"
}
