package delivery

import (
	"context"
	"database/sql"
	"errors"
	"html/template"
	"net/http"

	"billingd/billing"
	"billingd/billing/mail"
	"billingd/billing/store"
	"billingd/templates"
)

var payPage = template.Must(template.ParseFS(templates.FS, "pay/pay.html"))

// pageText is the payment page's wording in one language.
type pageText struct {
	Title, Deadline, Codes, Store, Code, Confirmation, AmountThis, Instructions, HowTo, PDF, Receipt, Sandbox, SimPaid, SimFailed, SimExpire string
	Status                                                                                                                                   map[billing.InvoiceStatus]string
}

var pageTexts = map[string]pageText{
	"ja": {Title: "請求書", Deadline: "お支払期限", Codes: "コンビニでのお支払い", Store: "コンビニ", Code: "お支払番号",
		Confirmation: "確認番号", AmountThis: "このお支払番号の金額", Instructions: "お支払方法の詳細", HowTo: "各コンビニでのお支払方法",
		PDF: "請求書 (PDF)", Receipt: "領収書 (PDF)", Sandbox: "サンドボックス（テスト用）", SimPaid: "支払い済みにする",
		SimFailed: "支払い失敗にする", SimExpire: "期限切れにする",
		Status: map[billing.InvoiceStatus]string{billing.InvoiceOpen: "未払い", billing.InvoicePaid: "お支払い済み", billing.InvoiceVoid: "無効", billing.InvoiceUncollectible: "回収不能"}},
	"en": {Title: "Invoice", Deadline: "Pay by", Codes: "Pay at a convenience store", Store: "Store", Code: "Payment code",
		Confirmation: "Confirmation number", AmountThis: "Amount for this code", Instructions: "Payment instructions", HowTo: "How to pay at each store",
		PDF: "Invoice (PDF)", Receipt: "Receipt (PDF)", Sandbox: "Sandbox (testing only)", SimPaid: "Simulate payment",
		SimFailed: "Simulate failure", SimExpire: "Simulate expiry",
		Status: map[billing.InvoiceStatus]string{billing.InvoiceOpen: "Unpaid", billing.InvoicePaid: "Paid", billing.InvoiceVoid: "Void", billing.InvoiceUncollectible: "Uncollectible"}},
}

// storeHowTo says how to pay at each store, per language.
var storeHowTo = map[string][2]string{
	"familymart": {"店内のマルチコピー機で「代金支払い」を選び、お支払番号と確認番号を入力して申込券を印刷し、30分以内にレジでお支払いください。", "At the Multi-copy machine choose bill payment, enter the payment code and confirmation number, print the slip and pay at the register within 30 minutes."},
	"lawson":     {"店内のLoppiで「各種番号をお持ちの方」を選び、お支払番号と確認番号を入力して申込券を印刷し、30分以内にレジでお支払いください。", "At the Loppi terminal choose \"I have a number\", enter the payment code and confirmation number, print the slip and pay at the register within 30 minutes."},
	"ministop":   {"店内のLoppiで「各種番号をお持ちの方」を選び、お支払番号と確認番号を入力して申込券を印刷し、30分以内にレジでお支払いください。", "At the Loppi terminal choose \"I have a number\", enter the payment code and confirmation number, print the slip and pay at the register within 30 minutes."},
	"seicomart":  {"レジで「インターネット支払い」とお伝えいただき、お支払番号と確認番号を端末に入力してお支払いください。", "Tell the cashier you want to make an internet payment, enter the payment code and confirmation number on the terminal and pay."},
}

var storeNames = map[string][2]string{
	"familymart": {"ファミリーマート", "FamilyMart"}, "lawson": {"ローソン", "Lawson"},
	"ministop": {"ミニストップ", "Ministop"}, "seicomart": {"セイコーマート", "Seicomart"},
}

type pageCode struct{ Store, Code, Confirmation string }
type pageVoucher struct {
	Codes                             []pageCode
	Amount, Deadline, InstructionsURL string
}
type pageStore struct{ Name, How string }

// PayPage serves the customer's payment page at GET /pay/{token}, its PDFs
// at /pay/{token}/invoice.pdf and /receipt.pdf, and in sandbox mode the
// simulation buttons at POST /pay/{token}/simulate. The token (160 random
// bits) is the only credential, as with Stripe's hosted invoice page.
func (s *Service) PayPage(mux *http.ServeMux) {
	mux.HandleFunc("GET /pay/{token}", s.page)
	mux.HandleFunc("GET /pay/{token}/{kind}", s.pagePDF)
	if s.Simulate != nil {
		mux.HandleFunc("POST /pay/{token}/simulate", s.simulate)
	}
}

func (s *Service) byToken(ctx context.Context, token string) (*billing.Invoice, *billing.Customer, []*billing.Voucher, error) {
	var id string
	err := s.DB.NewSelect().Model((*billing.Invoice)(nil)).Column("id").Where("pay_token = ?", token).Where("status <> ?", billing.InvoiceDraft).Scan(ctx, &id)
	if errors.Is(err, sql.ErrNoRows) || len(token) < 20 {
		return nil, nil, nil, billing.Errorf(billing.ENOTFOUND, "No such invoice.")
	} else if err != nil {
		return nil, nil, nil, store.Translate(err)
	}
	return s.load(ctx, id)
}

func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	in, cust, vs, err := s.byToken(r.Context(), r.PathValue("token"))
	if err != nil {
		httpError(w, err)
		return
	}
	lang := "ja"
	if cust.Language == "en" {
		lang = "en"
	}
	li := 0
	if lang == "en" {
		li = 1
	}
	t := pageTexts[lang]
	base := "/pay/" + in.PayToken
	data := map[string]any{
		"Lang": lang, "T": t, "Number": deref(in.Number), "Issuer": in.IssuerName, "Status": string(in.Status),
		"StatusText": t.Status[in.Status], "Amount": mail.FormatYen(in.AmountRemaining, lang),
		"HasPDF": in.Status == billing.InvoiceOpen || in.Status == billing.InvoicePaid, "PDFURL": base + "/invoice.pdf",
		"Receipt": in.Status == billing.InvoicePaid && in.AmountPaid > 0, "ReceiptURL": base + "/receipt.pdf",
		"Sandbox": s.Simulate != nil && in.Status == billing.InvoiceOpen, "SimulateURL": base + "/simulate",
	}
	if in.Status == billing.InvoicePaid {
		data["Amount"] = mail.FormatYen(in.AmountPaid, lang)
	}
	if in.Status == billing.InvoiceOpen {
		var pvs []pageVoucher
		stores := map[string]bool{}
		for _, v := range live(vs) {
			pv := pageVoucher{Amount: mail.FormatYen(v.Amount, lang), InstructionsURL: v.InstructionsURL}
			if v.ExpiresAt != nil {
				pv.Deadline = mail.FormatTime(*v.ExpiresAt, lang)
				data["Deadline"] = pv.Deadline
			}
			for _, c := range v.PaymentCodes {
				name := []string{"各コンビニ共通", "All stores"}[li]
				if n, ok := storeNames[c.Store]; ok {
					name = n[li]
					stores[c.Store] = true
				}
				pv.Codes = append(pv.Codes, pageCode{Store: name, Code: c.PaymentCode, Confirmation: c.ConfirmationNumber})
			}
			pvs = append(pvs, pv)
		}
		if len(stores) == 0 { // one code for every store (Opn): explain them all
			for k := range storeNames {
				stores[k] = true
			}
		}
		var ps []pageStore
		for _, k := range []string{"familymart", "lawson", "ministop", "seicomart"} {
			if stores[k] {
				ps = append(ps, pageStore{Name: storeNames[k][li], How: storeHowTo[k][li]})
			}
		}
		data["Vouchers"], data["Stores"] = pvs, ps
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := payPage.Execute(w, data); err != nil {
		s.Logger.Error("payment page", "err", err)
	}
}

func (s *Service) pagePDF(w http.ResponseWriter, r *http.Request) {
	kind := map[string]string{"invoice.pdf": "invoice", "receipt.pdf": "receipt"}[r.PathValue("kind")]
	in, _, _, err := s.byToken(r.Context(), r.PathValue("token"))
	if err == nil && kind == "" {
		err = billing.Errorf(billing.ENOTFOUND, "No such document.")
	}
	if err != nil {
		httpError(w, err)
		return
	}
	doc, err := s.Document(r.Context(), in.ID, kind)
	if err != nil {
		httpError(w, err)
		return
	}
	ServePDF(w, doc, deref(in.Number))
}

// ServePDF writes a stored document with its SHA-256 in a header.
func ServePDF(w http.ResponseWriter, doc *billing.Document, name string) {
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `inline; filename="`+doc.Kind+"-"+name+`.pdf"`)
	w.Header().Set("X-Content-SHA256", doc.SHA256)
	w.Write(doc.Content) //nolint:errcheck
}

func (s *Service) simulate(w http.ResponseWriter, r *http.Request) {
	in, _, vs, err := s.byToken(r.Context(), r.PathValue("token"))
	if err != nil {
		httpError(w, err)
		return
	}
	action := r.FormValue("action")
	if action != "mark_as_paid" && action != "mark_as_failed" && action != "expire" {
		http.Error(w, "action must be mark_as_paid, mark_as_failed or expire", http.StatusBadRequest)
		return
	}
	for _, v := range live(vs) {
		if err := s.Simulate(r.Context(), v.ProviderID, action); err != nil {
			httpError(w, err)
			return
		}
	}
	http.Redirect(w, r, "/pay/"+in.PayToken, http.StatusSeeOther)
}

func httpError(w http.ResponseWriter, err error) {
	switch billing.ErrorCode(err) {
	case billing.ENOTFOUND:
		http.Error(w, billing.ErrorMessage(err), http.StatusNotFound)
	case billing.ECONFLICT:
		w.Header().Set("Retry-After", "2")
		http.Error(w, billing.ErrorMessage(err), http.StatusConflict)
	default:
		http.Error(w, "Something went wrong; please try again.", http.StatusInternalServerError)
	}
}
