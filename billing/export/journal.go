package export

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"billingd/billing"
)

// Entry types, as written in the csv journal's type column.
const (
	typeSale     = "sale"
	typeBalance  = "balance"
	typePayment  = "payment"
	typeWriteOff = "write_off"
	typeVoid     = "void"
	// typeCreditNote is a credit note (適格返還請求書).
	typeCreditNote = "credit_note"
)

// line is one side of a journal entry. Amounts are positive and include
// tax; Tax is the consumption tax inside Amount, for the tax category.
type line struct {
	Debit   bool
	Account string
	Sub     string
	TaxCat  string
	Amount  int64
	Tax     int64
}

// part is a share of an amount attributed to one tax rate.
type part struct {
	Rate   billing.TaxRate
	Amount int64 // tax included
	Tax    int64
}

// entry is one journal entry (a slip): its lines balance.
type entry struct {
	Type         string
	At           time.Time
	Ref          string // the source row: invoice, voucher, balance transaction or credit note id
	Doc          string // a credit note's number
	InvoiceID    string
	Number       string
	CustomerName string
	Due          time.Time
	Provider     string
	Memo         string // 摘要
	Lines        []line

	// For freee's 取引 layout, which records deals instead of lines.
	Sales     []part // sale: per rate
	Gross     int64  // payment: the voucher amount
	FeeTotal  int64  // payment: fee with its VAT
	FeeVAT    int64
	Recovered []part // payment: written-off amounts recovered
}

// builder turns event rows into entries, reusing one entry's memory.
type builder struct {
	acc  *Accounts
	e    entry
	bd   []billing.TaxAmount
	net  []billing.TaxAmount
	cred [][]billing.TaxAmount
}

func (b *builder) add(debit bool, account, sub, cat string, amount, tax int64) {
	if amount == 0 {
		return
	}
	if amount < 0 { // a rate credited on an invoice (a plan change between rates): the other side
		debit, amount, tax = !debit, -amount, -tax
	}
	b.e.Lines = append(b.e.Lines, line{Debit: debit, Account: account, Sub: sub, TaxCat: cat, Amount: amount, Tax: tax})
}

// breakdown decodes an invoice's tax breakdown and checks that it adds up
// to the total.
func (b *builder) breakdown(r *eventRow) ([]billing.TaxAmount, error) {
	b.bd = b.bd[:0]
	if r.Breakdown != "" && r.Breakdown != "null" {
		if err := json.Unmarshal([]byte(r.Breakdown), &b.bd); err != nil {
			return nil, fmt.Errorf("invoice %s: tax breakdown: %w", r.InvoiceID, err)
		}
	}
	var sum int64
	for _, t := range b.bd {
		sum += t.TaxableAmount + t.Tax
	}
	if sum != r.Amount && r.Ord != evPayment {
		what := "invoice " + r.InvoiceID
		if r.Ord == evCreditNote {
			what = "credit note " + r.ID
		}
		return nil, fmt.Errorf("%s: tax breakdown adds up to %d but the total is %d", what, sum, r.Amount)
	}
	return b.bd, nil
}

// netOfCredits returns the invoice's breakdown bd less the breakdowns of
// the credit notes that reduced its amount due before the event (r.Credits),
// rate by rate: what a void reverses, what a write-off or a recovery is split
// over. The credit notes never take more than a rate has.
func (b *builder) netOfCredits(r *eventRow, bd []billing.TaxAmount) ([]billing.TaxAmount, error) {
	b.net = append(b.net[:0], bd...)
	if r.Credits == "" {
		return b.net, nil
	}
	b.cred = b.cred[:0]
	if err := json.Unmarshal([]byte(r.Credits), &b.cred); err != nil {
		return nil, fmt.Errorf("invoice %s: credit notes' tax breakdowns: %w", r.InvoiceID, err)
	}
	for _, c := range b.cred {
		for _, t := range c {
			i := 0
			for i < len(b.net) && b.net[i].Rate != t.Rate {
				i++
			}
			if i == len(b.net) || t.TaxableAmount > b.net[i].TaxableAmount || t.Tax > b.net[i].Tax {
				return nil, fmt.Errorf("invoice %s: its credit notes take more at the %s rate than it has", r.InvoiceID, t.Rate)
			}
			b.net[i].TaxableAmount -= t.TaxableAmount
			b.net[i].Tax -= t.Tax
		}
	}
	return b.net, nil
}

// allocate splits amount over the invoice's rates in proportion to each
// rate's total (tax included), the tax in proportion to each rate's tax;
// the whole total gives back the breakdown exactly. An amount above the
// total (a written-off invoice that also carried an earlier balance) has
// its excess in a part without rate.
func allocate(amount int64, bd []billing.TaxAmount) []part {
	var total int64
	for _, t := range bd {
		total += t.TaxableAmount + t.Tax
	}
	base := min(amount, total)
	var parts []part
	left := base
	for i, t := range bd {
		g := t.TaxableAmount + t.Tax
		if g == 0 {
			continue
		}
		p := part{Rate: t.Rate}
		switch {
		case base == total:
			p.Amount, p.Tax = g, t.Tax
		case i == len(bd)-1:
			p.Amount = left
		default:
			p.Amount = base * g / total
		}
		if base != total {
			p.Tax = p.Amount * t.Tax / g
		}
		left -= p.Amount
		if p.Amount != 0 {
			parts = append(parts, p)
		}
	}
	if left > 0 && len(parts) > 0 { // integer division left a remainder
		parts[len(parts)-1].Amount += left
	}
	if amount > base {
		parts = append(parts, part{Amount: amount - base})
	}
	return parts
}

// build makes the entry for r. An entry without lines (a ¥0 invoice, a
// write-off of nothing) is skipped by the caller.
func (b *builder) build(r *eventRow) (*entry, error) {
	a := b.acc
	b.e = entry{Lines: b.e.Lines[:0], At: r.At, Ref: r.ID, InvoiceID: r.InvoiceID, Number: r.Number,
		CustomerName: r.CustomerName, Due: r.Due, Provider: r.Provider}
	num := r.Number
	if num == "" {
		num = r.InvoiceID
	}
	memo := func(what string) string {
		if num == "" {
			return what + " " + r.CustomerName
		}
		return what + " " + num + " " + r.CustomerName
	}
	switch r.Ord {
	case evSale:
		bd, err := b.breakdown(r)
		if err != nil {
			return nil, err
		}
		b.e.Type, b.e.Memo = typeSale, memo("請求")
		b.add(true, a.Receivable, a.ReceivableSub, a.TaxNone, r.Amount, 0)
		for _, t := range bd {
			b.add(false, a.Sales, a.SalesSub, a.sales(t.Rate), t.TaxableAmount+t.Tax, t.Tax)
			if t.TaxableAmount+t.Tax != 0 {
				b.e.Sales = append(b.e.Sales, part{Rate: t.Rate, Amount: t.TaxableAmount + t.Tax, Tax: t.Tax})
			}
		}
	case evVoid:
		bd, err := b.breakdown(r)
		if err != nil {
			return nil, err
		}
		net, err := b.netOfCredits(r, bd)
		if err != nil {
			return nil, err
		}
		b.e.Type, b.e.Memo = typeVoid, memo("請求取消")
		var left int64
		for _, t := range net {
			b.add(true, a.Sales, a.SalesSub, a.sales(t.Rate), t.TaxableAmount+t.Tax, t.Tax)
			left += t.TaxableAmount + t.Tax
		}
		b.add(false, a.Receivable, a.ReceivableSub, a.TaxNone, left, 0)
		if r.Flag == 1 { // the write-off is reversed too, less what was recovered since
			w := max(r.N1, 0)
			if back := w - min(w, r.N2); back > 0 {
				b.add(true, a.Receivable, a.ReceivableSub, a.TaxNone, back, 0)
				for _, p := range allocate(back, net) {
					b.add(false, a.BadDebt, "", b.badDebtCat(p.Rate), p.Amount, p.Tax)
				}
			}
		}
	case evWriteOff:
		bd, err := b.breakdown(r)
		if err != nil {
			return nil, err
		}
		if bd, err = b.netOfCredits(r, bd); err != nil {
			return nil, err
		}
		b.e.Type, b.e.Memo = typeWriteOff, memo("貸倒")
		if w := r.N1; w > 0 {
			for _, p := range allocate(w, bd) {
				b.add(true, a.BadDebt, "", b.badDebtCat(p.Rate), p.Amount, p.Tax)
			}
			b.add(false, a.Receivable, a.ReceivableSub, a.TaxNone, w, 0)
		}
	case evPayment:
		b.e.Type = typePayment
		b.e.Memo = strings.TrimSpace(memo("入金") + " " + r.Provider + " " + r.ProviderID)
		sub := strings.ReplaceAll(a.ProviderSub, "{provider}", r.Provider)
		b.e.Gross = r.Amount
		b.add(true, a.Provider, sub, a.TaxNone, r.Amount, 0)
		b.add(false, a.Receivable, a.ReceivableSub, a.TaxNone, r.Amount, 0)
		if r.HasFee == 1 {
			b.e.FeeTotal, b.e.FeeVAT = r.Fee+r.FeeVAT, r.FeeVAT
			b.add(true, a.Fees, a.FeesSub, a.TaxFees, r.Fee+r.FeeVAT, r.FeeVAT)
			b.add(false, a.Provider, sub, a.TaxNone, r.Fee+r.FeeVAT, 0)
		}
		if r.Flag == 1 { // paid after the write-off: the part that was written off is recovered
			if rec := min(r.Amount, max(r.N1-r.N2, 0)); rec > 0 {
				bd, err := b.breakdown(r)
				if err == nil {
					bd, err = b.netOfCredits(r, bd)
				}
				if err != nil {
					return nil, err
				}
				b.add(true, a.Receivable, a.ReceivableSub, a.TaxNone, rec, 0)
				b.e.Recovered = allocate(rec, bd)
				for _, p := range b.e.Recovered {
					b.add(false, a.Recovery, "", b.recoveryCat(p.Rate), p.Amount, p.Tax)
				}
			}
		}
	case evCreditNote:
		bd, err := b.breakdown(r)
		if err != nil {
			return nil, err
		}
		b.e.Type, b.e.Doc = typeCreditNote, r.DocNumber
		b.e.Memo = "返還 " + r.DocNumber + " " + num + " " + r.CustomerName
		// Sales are reversed rate by rate with the credit note's own tax.
		for _, t := range bd {
			b.add(true, a.Sales, a.SalesSub, a.salesReturn(t.Rate), t.TaxableAmount+t.Tax, t.Tax)
		}
		switch billing.CreditNoteOutcome(r.Type) {
		case billing.OutcomeReduceAmountDue:
			if r.Flag == 1 { // what was written off is no longer owed
				for _, t := range bd {
					b.add(false, a.BadDebt, "", b.badDebtCat(t.Rate), t.TaxableAmount+t.Tax, t.Tax)
				}
			} else {
				b.add(false, a.Receivable, a.ReceivableSub, a.TaxNone, r.Amount, 0)
			}
		case billing.OutcomeCustomerBalance:
			b.add(false, a.CustomerBalance, a.CustomerBalanceSub, a.TaxNone, r.Amount, 0)
		case billing.OutcomeOutOfBand:
			b.add(false, a.Refund, a.RefundSub, a.TaxNone, r.Amount, 0)
		default:
			return nil, fmt.Errorf("credit note %s: unknown outcome %q", r.ID, r.Type)
		}
	case evBalance:
		b.e.Type = typeBalance
		switch r.Type {
		case "carry_over":
			b.e.Memo = memo("繰越")
		case "applied_to_invoice":
			b.e.Memo = memo("残高充当")
		case "excess_payment":
			b.e.Memo = memo("過入金")
		case "invoice_voided":
			b.e.Memo = memo("取消戻し")
		case "proration_credit":
			b.e.Memo = memo("日割り返金")
		default:
			b.e.Memo = memo("残高調整")
		}
		switch {
		case r.Breakdown != "" && r.Breakdown != "null":
			// A movement with a tax breakdown (a proration credit) is
			// consideration given back for time not used: sales and output
			// tax are reduced rate by rate (negative amounts go to the
			// debit side), and the customer holds the credit.
			bd, err := b.breakdown(r)
			if err != nil {
				return nil, err
			}
			for _, t := range bd {
				b.add(false, a.Sales, a.SalesSub, a.salesReturn(t.Rate), t.TaxableAmount+t.Tax, t.Tax)
			}
			b.add(false, a.CustomerBalance, a.CustomerBalanceSub, a.TaxNone, -r.Amount, 0)
		// A positive movement is more owed by the customer: it leaves the
		// invoice's receivable for the balance account; a negative one is
		// a credit, taken from the receivable into the balance account.
		case r.Amount > 0:
			b.add(true, a.CustomerBalance, a.CustomerBalanceSub, a.TaxNone, r.Amount, 0)
			b.add(false, a.Receivable, a.ReceivableSub, a.TaxNone, r.Amount, 0)
		default:
			b.add(true, a.Receivable, a.ReceivableSub, a.TaxNone, -r.Amount, 0)
			b.add(false, a.CustomerBalance, a.CustomerBalanceSub, a.TaxNone, -r.Amount, 0)
		}
	default:
		return nil, fmt.Errorf("unknown journal event %d", r.Ord)
	}
	var dr, cr int64
	for _, l := range b.e.Lines {
		if l.Amount < 0 {
			return nil, fmt.Errorf("%s %s: negative line %d on %s", b.e.Type, r.ID, l.Amount, l.Account)
		}
		if l.Debit {
			dr += l.Amount
		} else {
			cr += l.Amount
		}
	}
	if dr != cr {
		return nil, fmt.Errorf("%s %s does not balance: debits %d, credits %d", b.e.Type, r.ID, dr, cr)
	}
	return &b.e, nil
}

func (b *builder) badDebtCat(r billing.TaxRate) string {
	if r == "" {
		return b.acc.TaxNone
	}
	return b.acc.badDebt(r)
}

func (b *builder) recoveryCat(r billing.TaxRate) string {
	if r == "" {
		return b.acc.TaxNone
	}
	return b.acc.recovery(r)
}

// pairs returns the entry's lines side by side, as the accounting formats
// write them: row i holds the i-th debit and the i-th credit, either of
// which may be missing.
func pairs(lines []line, fn func(d, c *line) error) error {
	var di, ci []int
	for i := range lines {
		if lines[i].Debit {
			di = append(di, i)
		} else {
			ci = append(ci, i)
		}
	}
	n := max(len(di), len(ci))
	for k := 0; k < n; k++ {
		var d, c *line
		if k < len(di) {
			d = &lines[di[k]]
		}
		if k < len(ci) {
			c = &lines[ci[k]]
		}
		if err := fn(d, c); err != nil {
			return err
		}
	}
	return nil
}

// rowCount returns how many side-by-side rows the entry takes.
func rowCount(lines []line) int {
	var d, c int
	for _, l := range lines {
		if l.Debit {
			d++
		} else {
			c++
		}
	}
	return max(d, c)
}
