package export

import (
	"strings"
	"time"
)

// renderer writes journal entries in one format.
type renderer interface {
	columns() []string
	header() bool
	entry(t *table, e *entry, seq int) error
}

func dateSlash(t time.Time, loc *time.Location) string { return t.In(loc).Format("2006/01/02") }

func side(l *line) (acc, sub, cat, amount, tax string) {
	if l == nil {
		return "", "", "", "", ""
	}
	return l.Account, l.Sub, l.TaxCat, itoa(l.Amount), itoa(l.Tax)
}

// csvJournal is the generic journal: one row per debit/credit pair.
type csvJournal struct{ loc *time.Location }

func (csvJournal) columns() []string {
	return []string{"entry", "date", "type", "reference", "invoice_id", "invoice_number", "customer_name",
		"debit_account", "debit_sub_account", "debit_tax_category", "debit_amount", "debit_tax",
		"credit_account", "credit_sub_account", "credit_tax_category", "credit_amount", "credit_tax", "description"}
}
func (csvJournal) header() bool { return true }
func (r csvJournal) entry(t *table, e *entry, seq int) error {
	date := e.At.In(r.loc).Format("2006-01-02")
	n := itoa(int64(seq))
	return pairs(e.Lines, func(d, c *line) error {
		da, ds, dc, dm, dt := side(d)
		ca, cs, cc, cm, ct := side(c)
		return t.row(n, date, e.Type, e.Ref, e.InvoiceID, e.Number, e.CustomerName, da, ds, dc, dm, dt, ca, cs, cc, cm, ct, e.Memo)
	})
}

// yayoi is 弥生会計's 仕訳日記帳 import (弥生インポート形式): no header, 25
// columns. A one-row entry is flagged 2000; a slip of several rows 2110
// (first), 2100 (middle), 2101 (last). 伝票No. is left empty so that
// Yayoi numbers the slips; a missing side has no account and amount 0.
type yayoi struct{ loc *time.Location }

var yayoiColumns = []string{"識別フラグ", "伝票No.", "決算", "取引日付", "借方勘定科目", "借方補助科目", "借方部門", "借方税区分",
	"借方金額", "借方税金額", "貸方勘定科目", "貸方補助科目", "貸方部門", "貸方税区分", "貸方金額", "貸方税金額", "摘要",
	"番号", "期日", "タイプ", "生成元", "仕訳メモ", "付箋1", "付箋2", "調整"}

func (yayoi) columns() []string { return yayoiColumns }
func (yayoi) header() bool      { return false }
func (r yayoi) entry(t *table, e *entry, seq int) error {
	date := dateSlash(e.At, r.loc)
	n, i := rowCount(e.Lines), 0
	return pairs(e.Lines, func(d, c *line) error {
		flag := "2000"
		if n > 1 {
			switch i {
			case 0:
				flag = "2110"
			case n - 1:
				flag = "2101"
			default:
				flag = "2100"
			}
		}
		i++
		da, ds, dc, dm, dt := side(d)
		ca, cs, cc, cm, ct := side(c)
		if d == nil {
			dm, dt = "0", "0"
		}
		if c == nil {
			cm, ct = "0", "0"
		}
		return t.row(flag, "", "", date, da, ds, "", dc, dm, dt, ca, cs, "", cc, cm, ct, e.Memo, "", "", "0", "", e.Ref, "0", "0", "no")
	})
}

// moneyForward is マネーフォワード クラウド会計's 仕訳帳 import: the 27
// columns of its template; rows of one entry share 取引No and 取引日 and
// balance together, which makes them one compound entry.
type moneyForward struct{ loc *time.Location }

func (moneyForward) columns() []string {
	return []string{"取引No", "取引日", "借方勘定科目", "借方補助科目", "借方部門", "借方取引先", "借方税区分", "借方インボイス",
		"借方金額(円)", "借方税額", "貸方勘定科目", "貸方補助科目", "貸方部門", "貸方取引先", "貸方税区分", "貸方インボイス",
		"貸方金額(円)", "貸方税額", "摘要", "仕訳メモ", "タグ", "MF仕訳タイプ", "決算整理仕訳", "作成日時", "作成者", "最終更新日時", "最終更新者"}
}
func (moneyForward) header() bool { return true }
func (r moneyForward) entry(t *table, e *entry, seq int) error {
	date := dateSlash(e.At, r.loc)
	n := itoa(int64(seq))
	return pairs(e.Lines, func(d, c *line) error {
		da, ds, dc, dm, dt := side(d)
		ca, cs, cc, cm, ct := side(c)
		return t.row(n, date, da, ds, "", "", dc, "", dm, dt, ca, cs, "", "", cc, "", cm, ct, e.Memo, e.Ref, "", "", "", "", "", "", "")
	})
}

// freeeJournal is freee会計's 仕訳 import (registered as 振替伝票): a header
// that the import maps by name; rows with the same 発生日 and 伝票番号 form
// one entry.
type freeeJournal struct{ loc *time.Location }

func (freeeJournal) columns() []string {
	return []string{"伝票番号", "発生日", "借方勘定科目", "借方補助科目", "借方税区分", "借方金額", "借方税額",
		"貸方勘定科目", "貸方補助科目", "貸方税区分", "貸方金額", "貸方税額", "摘要", "備考"}
}
func (freeeJournal) header() bool { return true }
func (r freeeJournal) entry(t *table, e *entry, seq int) error {
	date := dateSlash(e.At, r.loc)
	n := itoa(int64(seq))
	return pairs(e.Lines, func(d, c *line) error {
		da, ds, dc, dm, dt := side(d)
		ca, cs, cc, cm, ct := side(c)
		return t.row(n, date, da, ds, dc, dm, dt, ca, cs, cc, cm, ct, e.Memo, e.Ref)
	})
}

// freeeDeals is freee会計's 取引 import, for sales and payments: a sale is
// an unsettled 収入 deal (freee books 売掛金 itself) with one row per tax
// rate; a payment is a 収入 deal on 売掛金 settled into the provider's
// account (決済口座, which must be registered in freee as an 口座), and its
// fee a 支出 deal settled from the same account. Rows after the first of a
// deal leave 収支区分 to 取引先 empty.
type freeeDeals struct {
	loc *time.Location
	acc *Accounts
}

func (freeeDeals) columns() []string {
	return []string{"収支区分", "管理番号", "発生日", "決済期日", "取引先", "勘定科目", "税区分", "金額", "税計算区分", "税額",
		"備考", "品目", "部門", "メモタグ(複数指定可、カンマ区切り)", "決済日", "決済口座", "決済金額"}
}
func (freeeDeals) header() bool { return true }

// dealRow is one row of a freee deal.
type dealRow struct {
	account, cat string
	amount, tax  int64
}

func (r freeeDeals) deal(t *table, kind, number, date, due, partner string, rows []dealRow, note, settleDate, account string, settled int64) error {
	first := true
	for _, d := range rows {
		if d.amount == 0 {
			continue
		}
		k, n, dt, du, p, nt, sd, sa, sv := kind, number, date, due, partner, note, settleDate, account, ""
		if settleDate != "" {
			sv = itoa(settled)
		}
		if !first {
			k, n, dt, du, p, nt, sd, sa, sv = "", "", "", "", "", "", "", "", ""
		}
		first = false
		if err := t.row(k, n, dt, du, p, d.account, d.cat, itoa(d.amount), "内税", itoa(d.tax), nt, "", "", "", sd, sa, sv); err != nil {
			return err
		}
	}
	return nil
}

func (r freeeDeals) entry(t *table, e *entry, seq int) error {
	a := r.acc
	date := dateSlash(e.At, r.loc)
	num := e.Number
	if num == "" {
		num = e.InvoiceID
	}
	switch e.Type {
	case typeSale:
		rows := make([]dealRow, 0, len(e.Sales))
		for _, p := range e.Sales {
			rows = append(rows, dealRow{a.Sales, a.sales(p.Rate), p.Amount, p.Tax})
		}
		return r.deal(t, "収入", num, date, dateSlash(e.Due, r.loc), e.CustomerName, rows, e.Ref, "", "", 0)
	case typePayment:
		account := a.Provider // freee's 決済口座: the sub-account if one is set
		if sub := strings.ReplaceAll(a.ProviderSub, "{provider}", e.Provider); sub != "" {
			account = sub
		}
		var rec int64
		rows := []dealRow{{}}
		for _, p := range e.Recovered {
			rec += p.Amount
			cat := a.TaxNone
			if p.Rate != "" {
				cat = a.recovery(p.Rate)
			}
			rows = append(rows, dealRow{a.Recovery, cat, p.Amount, p.Tax})
		}
		rows[0] = dealRow{a.Receivable, a.TaxNone, e.Gross - rec, 0}
		if err := r.deal(t, "収入", num, date, "", e.CustomerName, rows, e.Ref, date, account, e.Gross); err != nil {
			return err
		}
		if e.FeeTotal > 0 {
			return r.deal(t, "支出", num, date, "", e.Provider, []dealRow{{a.Fees, a.TaxFees, e.FeeTotal, e.FeeVAT}}, e.Ref, date, account, e.FeeTotal)
		}
	}
	return nil
}
