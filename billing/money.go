package billing

import (
	"github.com/shopspring/decimal"
)

// Currency is the only currency billingd bills in.
const Currency = "jpy"

// MaxAmount is the largest amount in yen accepted for a price, a line or an
// invoice: ¥100 billion, far above any real invoice and far below int64's
// range, so sums of many lines cannot overflow.
const MaxAmount = 100_000_000_000

// MaxQuantity caps a line's or subscription item's quantity.
const MaxQuantity = 1_000_000

// TaxRate is a Japanese consumption tax rate category.
type TaxRate string

// Consumption tax rates.
const (
	TaxStandard TaxRate = "standard" // 10 %
	TaxReduced  TaxRate = "reduced"  // 8 %, food and newspapers (marked ※ on invoices)
	TaxExempt   TaxRate = "exempt"   // 0 %, 非課税
)

// Valid reports whether r is a known rate.
func (r TaxRate) Valid() bool {
	return r == TaxStandard || r == TaxReduced || r == TaxExempt
}

// Rate returns the rate as a fraction (0.10, 0.08 or 0).
func (r TaxRate) Rate() decimal.Decimal {
	switch r {
	case TaxStandard:
		return decimal.New(10, -2)
	case TaxReduced:
		return decimal.New(8, -2)
	}
	return decimal.Zero
}

// Percent returns the rate in percent, as printed on documents (10, 8 or 0).
func (r TaxRate) Percent() int64 {
	return r.Rate().Shift(2).IntPart()
}

// TaxBehavior says whether a price includes consumption tax.
type TaxBehavior string

// Tax behaviors.
const (
	TaxExclusive TaxBehavior = "exclusive" // 税抜: tax is added on top
	TaxInclusive TaxBehavior = "inclusive" // 税込: the price contains the tax
)

// Valid reports whether b is a known behavior.
func (b TaxBehavior) Valid() bool { return b == TaxExclusive || b == TaxInclusive }

// Rounding is how the consumption tax of each rate is rounded to whole yen.
type Rounding string

// Rounding modes allowed by the invoice system.
const (
	RoundDown   Rounding = "down"    // 切り捨て, the most common
	RoundUp     Rounding = "up"      // 切り上げ
	RoundHalfUp Rounding = "half_up" // 四捨五入
)

// Valid reports whether m is a known rounding mode.
func (m Rounding) Valid() bool { return m == RoundDown || m == RoundUp || m == RoundHalfUp }

// Round rounds d to whole yen by m, away from or toward zero symmetrically so
// that credits round like charges.
func (m Rounding) Round(d decimal.Decimal) int64 {
	switch m {
	case RoundUp:
		return d.RoundUp(0).IntPart()
	case RoundHalfUp:
		return d.Round(0).IntPart()
	}
	return d.RoundDown(0).IntPart()
}
