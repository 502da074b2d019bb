package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/text/language"

	"billingd/billing"
	"billingd/billing/mail"
)

// page is what every template executes on: the request's language and
// session, and the page's own Data. Its methods translate and format.
type page struct {
	Lang     string // ja or en
	Title    string // a catalog key
	Path     string // the request URI, for the language links
	LoggedIn bool
	CSRF     string
	Flash    *flash
	Data     any
	loc      *time.Location
}

// T translates a catalog key. A key missing from the catalog shows as is
// (a test checks that the texts are all there), except a value key
// ("status.open", "sub.trialing") which shows its value: a status added
// elsewhere reads "trialing" until it is translated.
func (p *page) T(key string) string {
	if v, ok := catalog[p.Lang][key]; ok {
		return v
	}
	if prefix, value, ok := strings.Cut(key, "."); ok && value != "" && prefix != "" && strings.ToLower(prefix) == prefix && !strings.Contains(prefix, " ") {
		return value
	}
	return key
}

// Yen formats an amount: 12,345円 or ¥12,345.
func (p *page) Yen(n int64) string { return mail.FormatYen(n, p.Lang) }

// Time formats a time (or a *time.Time; nil is "") in the operator's zone
// to the minute.
func (p *page) Time(t any) string { return p.format(t, "2006-01-02 15:04") }

// Date formats a day in the operator's zone.
func (p *page) Date(t any) string { return p.format(t, "2006-01-02") }

func (p *page) format(v any, layout string) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	}
	if t.IsZero() {
		return ""
	}
	return t.In(p.loc).Format(layout)
}

// Num is an invoice's number, or a dash for a draft, which has none yet.
func (p *page) Num(in *billing.Invoice) string {
	if in.Number == nil {
		return p.T("(draft)")
	}
	return *in.Number
}

// JSON indents an event's data for reading.
func (p *page) JSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// IsInvoice reports whether an object id is an invoice's.
func (p *page) IsInvoice(id string) bool { return strings.HasPrefix(id, billing.PrefixInvoice) }

// LangURL switches the dashboard to lang and comes back to this page.
func (p *page) LangURL(lang string) string {
	return "/admin/lang/" + lang + "?next=" + url.QueryEscape(p.Path)
}

// month names a month: 2027年1月 or January 2027.
func month(t time.Time, lang string) string {
	if lang == "en" {
		return t.Format("January 2006")
	}
	return t.Format("2006年1月")
}

// matcher picks ja (0) or en (1) from Accept-Language; Japanese is the
// default.
var matcher = language.NewMatcher([]language.Tag{language.Japanese, language.English})

// lang is the request's language: the language cookie, else the browser's
// Accept-Language, else Japanese.
func (s *Server) lang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := catalog[c.Value]; ok {
			return c.Value
		}
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "ja"
	}
	if _, i, conf := matcher.Match(tags...); i == 1 && conf != language.No {
		return "en"
	}
	return "ja"
}

// text translates key in the request's language, for messages built
// outside templates.
func (s *Server) text(r *http.Request, key string) string {
	return (&page{Lang: s.lang(r)}).T(key)
}

// catalog holds the dashboard's wording. Keys are the English text, or a
// short name for longer texts and for values (status.open, kind.journal).
var catalog = map[string]map[string]string{
	"en": {
		"login_hint":                 "Log in with the operator API key (the one printed at the first start, or BILLING_API_KEY) or the admin password (BILLING_ADMIN_PASSWORD).",
		"login_failed":               "That key or password is not right.",
		"login_expired":              "The login form expired; please try again.",
		"login_throttled":            "Too many failed logins from this address; wait ten minutes.",
		"session_expired":            "Your session has ended. Log in again and repeat the action.",
		"csrf_failed":                "The form was not sent from this dashboard (its security token is missing or stale). Reload the page and try again.",
		"internal_error":             "Something went wrong on our side; it has been logged.",
		"balance_hint":               "(positive: owed and added to the next invoice; negative: credit)",
		"finalize_hint":              "Number the draft and start collecting it.",
		"resend_hint":                "Sends the e-mail again, with the current payment codes.",
		"reissue_hint":               "Issues a new Konbini voucher for the amount remaining; the customer is e-mailed.",
		"uncollectible_hint":         "Records that payment is not expected; it can still be paid or voided.",
		"void_hint":                  "Nothing is owed any more; the live voucher is canceled and the customer is told.",
		"bom_hint":                   "Add a BOM (for Excel; csv only)",
		"export_hint":                "The same files are available to scripts with the API key at",
		"done.finalize":              "Invoice finalized.",
		"done.void":                  "Invoice voided.",
		"done.mark_uncollectible":    "Invoice marked uncollectible.",
		"done.reissue_voucher":       "A new voucher will be issued in a moment.",
		"done.resend_email":          "The e-mail is queued and goes out in a moment.",
		"confirm_needed":             "Tick “I confirm” first.",
		"action_failed":              "Not done:",
		"resend.invoice":             "Resend invoice e-mail",
		"resend.receipt":             "Resend receipt e-mail",
		"status.draft":               "Draft",
		"status.open":                "Open",
		"status.paid":                "Paid",
		"status.void":                "Void",
		"status.uncollectible":       "Uncollectible",
		"collection.none":            "None",
		"collection.pending":         "Voucher being prepared",
		"collection.active":          "Voucher issued",
		"collection.action_required": "Action required",
		"collection.canceling":       "Canceling voucher",
		"voucher.pending":            "Pending",
		"voucher.successful":         "Paid",
		"voucher.failed":             "Failed",
		"voucher.expired":            "Expired",
		"voucher.canceled":           "Canceled",
		"sub.active":                 "Active",
		"sub.past_due":               "Past due",
		"sub.canceled":               "Canceled",
		"txn.carry_over":             "Carried over",
		"txn.applied_to_invoice":     "Applied to invoice",
		"txn.excess_payment":         "Excess payment",
		"task.pending":               "Pending",
		"task.done":                  "Sent",
		"task.failed":                "Failed",
		"kind.invoices":              "Invoices (sales)",
		"kind.payments":              "Payments with fees",
		"kind.balance":               "Customer balance movements",
		"kind.credit_notes":          "Credit notes",
		"kind.journal":               "Journal (everything)",
		"format.csv":                 "CSV (UTF-8)",
		"format.yayoi":               "Yayoi Kaikei (Shift_JIS)",
		"format.freee":               "freee (Shift_JIS)",
		"format.moneyforward":        "Money Forward (Shift_JIS)",

		// Credit notes and webhooks.
		"credit_note_hint":              "Issues a numbered credit note (適格返還請求書) for the amount, with its consumption tax, and e-mails its PDF to the customer. It cannot be undone.",
		"credit_note_rates_hint":        "This invoice has several tax rates: a credit by amount is not possible here (credit by line through POST /v1/credit_notes).",
		"done.credit_note":              "Credit note issued:",
		"outcome_auto":                  "Outcome: automatic (reduce the amount due while something is due, else credit the balance)",
		"reason.duplicate":              "Duplicate",
		"reason.fraudulent":             "Fraudulent",
		"reason.order_change":           "Order change",
		"reason.product_unsatisfactory": "Product unsatisfactory",
		"outcome.reduce_amount_due":     "Reduce the amount due",
		"outcome.customer_balance":      "Credit the customer's balance",
		"outcome.out_of_band":           "Refunded outside billingd (recorded only)",
		"endpoint.failing":              "No delivery succeeded for the whole retry window",
		"endpoint.operator":             "Disabled by the operator",
		"reenable_hint":                 "The waiting deliveries and the events missed meanwhile are delivered once the endpoint is re-enabled:",
	},
	"ja": {
		"Overview": "概要", "Customers": "顧客", "Invoices": "請求書", "Exports": "エクスポート", "Log out": "ログアウト",
		"Log in": "ログイン", "API key or admin password": "APIキーまたは管理パスワード",
		"Logged out": "ログアウトしました", "Forbidden": "実行できません", "Not found": "見つかりません",
		"Invalid request": "入力に誤りがあります", "Not possible now": "この状態では実行できません", "Try again": "もう一度お試しください",
		"Something went wrong": "エラーが発生しました", "Back to the overview": "概要に戻る",
		"Issued this month": "今月の発行額", "Open": "未払い", "Overdue": "支払期限超過", "Paid this month": "今月の入金",
		"invoices": "件", "payments": "件", "Collections needing action": "対応が必要な回収",
		"Invoice": "請求書", "Customer": "顧客", "Remaining": "未払残高", "Reason": "理由", "None.": "ありません。",
		"Vouchers expiring within 7 days": "7日以内に期限が切れる払込票", "Expires": "期限", "Amount": "金額",
		"Failed tasks": "失敗した処理（メールなど）", "Failed at": "失敗日時",
		"Failed webhook deliveries": "Webhook配信の失敗", "Last attempt": "最終試行", "Endpoint": "送信先",
		"Disabled webhook endpoints": "停止中のWebhook送信先", "Disabled at": "停止日時", "Waiting deliveries": "配信待ち",
		"failing since": "失敗開始:", "Kind": "種類", "Task": "タスク",
		"Attempts": "試行回数", "Error": "エラー",
		"Name, e-mail, kana or ID": "氏名・メール・フリガナ・ID", "Search": "検索", "Name": "氏名", "Kana": "フリガナ",
		"E-mail": "メール", "Balance": "残高", "Created": "作成日", "Next page": "次のページ", "No customers found.": "該当する顧客はいません。",
		"ID": "ID", "Phone": "電話番号", "Language": "言語", "Address": "住所", "Registration number": "登録番号",
		"Subscriptions": "サブスクリプション", "Status": "状態", "Plans": "プラン", "Current period": "現在の期間",
		"Next billing": "次回請求", "cancels at period end": "期間末で解約",
		"Balance ledger": "残高の明細", "Date": "日付", "Type": "種類", "Ending balance": "残高", "Description": "内容",
		"Events": "イベント", "Number": "請求書番号", "Collection": "回収", "Total": "合計", "Due": "支払期限",
		"No invoices.": "請求書はありません。", "Time": "日時", "Event": "イベント", "Data": "データ",
		"All": "すべて", "Overdue only": "期限超過のみ", "Filter": "絞り込む",
		"Subscription": "サブスクリプション", "Period": "期間", "Finalized": "確定日時", "tax": "消費税",
		"Balance applied": "適用した残高", "Amount due": "請求額", "Paid": "入金額", "Carried to balance": "残高へ繰越",
		"Paid at": "入金日時", "Voided at": "無効日時", "Marked uncollectible at": "回収不能日時", "Documents": "書類",
		"Invoice (PDF)": "請求書 (PDF)", "Receipt (PDF)": "領収書 (PDF)", "Customer's payment page": "顧客の支払ページ",
		"Actions": "操作", "Finalize": "確定する", "Reissue voucher": "払込票を再発行", "I confirm": "確認しました",
		"Mark uncollectible": "回収不能にする", "Void": "無効にする",
		"No actions for an invoice in this state.": "この状態の請求書にできる操作はありません。",
		"Lines": "明細", "Quantity": "数量", "Unit price": "単価", "Tax rate": "税率", "Taxable at": "対象",
		"Vouchers": "払込票", "Payment code": "お支払番号", "Provider": "決済代行", "Fee": "手数料", "part": "分割",
		"E-mails": "メール", "Queued": "登録日時",
		"Issue a credit note": "返還請求書を発行", "All not yet credited": "未返還の全額", "Amount, tax included": "金額（税込）",
		"(not given)": "指定なし", "Outcome": "処理", "Memo (printed on the credit note)": "メモ（返還請求書に記載）",
		"Issue credit note": "発行する", "Credit notes": "返還請求書", "Credit note": "返還請求書", "Refund date": "返還日", "Memo": "メモ",
		"Contents": "内容", "Format": "形式", "From": "開始日", "To (included)": "終了日（含む）", "Download": "ダウンロード",
		"(draft)":                    "（下書き）",
		"login_hint":                 "運営者のAPIキー（初回起動時に表示されたもの、または BILLING_API_KEY）か管理パスワード（BILLING_ADMIN_PASSWORD）でログインします。",
		"login_failed":               "キーまたはパスワードが正しくありません。",
		"login_expired":              "ログインフォームの有効期限が切れました。もう一度お試しください。",
		"login_throttled":            "このアドレスからのログイン失敗が多すぎます。10分後にお試しください。",
		"session_expired":            "セッションが終了しました。ログインし直してから、もう一度操作してください。",
		"csrf_failed":                "このフォームはダッシュボードから送信されていません（セキュリティトークンがないか古くなっています）。ページを再読み込みしてやり直してください。",
		"internal_error":             "サーバー側でエラーが発生しました。記録済みです。",
		"balance_hint":               "（正: 未収で次回請求に加算、負: 顧客のクレジット）",
		"finalize_hint":              "下書きに番号を付けて回収を始めます。",
		"resend_hint":                "現在のお支払番号でメールをもう一度送ります。",
		"reissue_hint":               "未払残高で新しいコンビニ払込票を発行し、顧客にメールします。",
		"uncollectible_hint":         "支払いが見込めないことを記録します。後から入金や無効化もできます。",
		"void_hint":                  "請求を取り消します。有効な払込票は取り消され、顧客に通知されます。",
		"bom_hint":                   "BOMを付ける（Excel用、CSVのみ）",
		"export_hint":                "スクリプトからはAPIキーで同じファイルを取得できます:",
		"done.finalize":              "請求書を確定しました。",
		"done.void":                  "請求書を無効にしました。",
		"done.mark_uncollectible":    "請求書を回収不能にしました。",
		"done.reissue_voucher":       "まもなく新しい払込票を発行します。",
		"done.resend_email":          "メールを送信キューに入れました。まもなく送信されます。",
		"confirm_needed":             "先に「確認しました」にチェックを入れてください。",
		"action_failed":              "実行できませんでした:",
		"resend.invoice":             "請求メールを再送",
		"resend.receipt":             "領収メールを再送",
		"status.draft":               "下書き",
		"status.open":                "未払い",
		"status.paid":                "支払済み",
		"status.void":                "無効",
		"status.uncollectible":       "回収不能",
		"collection.none":            "なし",
		"collection.pending":         "払込票を準備中",
		"collection.active":          "払込票発行済み",
		"collection.action_required": "要対応",
		"collection.canceling":       "払込票を取消中",
		"voucher.pending":            "支払待ち",
		"voucher.successful":         "入金済み",
		"voucher.failed":             "失敗",
		"voucher.expired":            "期限切れ",
		"voucher.canceled":           "取消",
		"sub.active":                 "有効",
		"sub.past_due":               "支払遅延",
		"sub.canceled":               "解約済み",
		"sub.trialing":               "トライアル中",
		"sub.unpaid":                 "未払いで停止",
		"txn.carry_over":             "繰越",
		"txn.applied_to_invoice":     "請求書に充当",
		"txn.excess_payment":         "過入金",
		"txn.credit_note":            "クレジットノート",
		"txn.proration_credit":       "日割りの返金",
		"task.pending":               "送信待ち",
		"task.done":                  "送信済み",
		"task.failed":                "失敗",
		"kind.invoices":              "請求書（売上）",
		"kind.payments":              "入金と手数料",
		"kind.balance":               "顧客残高の増減",
		"kind.credit_notes":          "返還請求書（クレジットノート）",
		"kind.journal":               "仕訳帳（すべて）",
		"format.csv":                 "CSV（UTF-8）",
		"format.yayoi":               "弥生会計（Shift_JIS）",
		"format.freee":               "freee会計（Shift_JIS）",
		"format.moneyforward":        "マネーフォワード クラウド会計（Shift_JIS）",

		// Credit notes and webhooks.
		"credit_note_hint":              "番号付きの返還請求書（適格返還請求書）を消費税とともに発行し、PDFを顧客にメールします。取り消せません。",
		"credit_note_rates_hint":        "この請求書には複数の税率があるため、金額での返還はできません（明細ごとの返還は POST /v1/credit_notes で行えます）。",
		"done.credit_note":              "返還請求書を発行しました:",
		"outcome_auto":                  "処理: 自動（未払いがあれば請求額を減額、なければ顧客残高へ）",
		"reason.duplicate":              "二重請求",
		"reason.fraudulent":             "不正利用",
		"reason.order_change":           "注文の変更",
		"reason.product_unsatisfactory": "商品・サービスへの不満",
		"outcome.reduce_amount_due":     "請求額を減額",
		"outcome.customer_balance":      "顧客残高へクレジット",
		"outcome.out_of_band":           "別途返金済み（記録のみ）",
		"endpoint.failing":              "再試行期間中に一度も配信に成功しなかったため",
		"endpoint.operator":             "運営者が停止",
		"reenable_hint":                 "送信先を再び有効にすると、配信待ちのイベントと停止中に発生したイベントが配信されます:",
	},
}
