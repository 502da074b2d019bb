// Package export writes billingd's data for accountants: invoices, payments
// with the provider's fees, customer balance movements, credit notes
// (適格返還請求書) and a double-entry journal, as csv or as import files for 弥生会計 (yayoi), freee会計 (freee)
// and マネーフォワード クラウド会計 (moneyforward). Exports stream from the
// database (one SELECT read row by row), so a year of a million invoices is
// written in constant memory.
//
// # Range
//
// From and To are calendar days in the operator's time zone (JST by
// default), both included. An event belongs to the day on which it happened
// in that zone: a sale to its finalization, a payment to the provider's
// payment time, a balance movement to its creation, a write-off to the
// marking as uncollectible, a reversal to the void, a credit note to its
// issue (created; the refund date it prints, effective_at, is a column of
// the credit_notes table), so that consecutive ranges never book one twice.
//
// # Kinds and formats
//
//	             csv (UTF-8, header)            yayoi / moneyforward (Shift_JIS)   freee (Shift_JIS, header)
//	invoices     one row per invoice, per-rate  sales entries                      取引 import: 収入, unsettled
//	payments     one row per paid voucher       payment entries                    取引 import: 収入 settled + fee 支出
//	balance      one row per movement           balance entries                    仕訳 import (振替伝票)
//	credit_notes one row per credit note        credit note entries                仕訳 import (振替伝票)
//	journal      the journal, a row per pair    every entry                        仕訳 import (振替伝票)
//
// freee's 取引 import cannot express transfers between balance-sheet
// accounts, so balance movements, credit notes and the journal use its 仕訳
// import. The csv invoices table shows what credit notes took from each
// invoice (pre_payment_credit_notes: lowering its amount due;
// post_payment_credit_notes: credited to the balance or refunded); the
// credit_notes table has the credit note's and the original invoice's
// numbers and dates, reason, outcome, per-rate amounts and tax, and the
// invoice's amount due before and after it. Every
// file ends lines with CRLF; fields with a comma, a quote or a line break are
// quoted.
//
// # The journal
//
// Amounts include consumption tax and each taxed line carries its tax
// category and tax amount (税込金額 + 税区分 + 税額), which is what the three
// programs import: under 税抜経理 they post 仮受消費税 and 仮払消費税 from the
// tax column themselves, so the journal has no separate tax lines (writing
// both would count the tax twice). Each sales line is one tax rate of the
// invoice, with the tax rounded once per invoice per rate as printed on it.
// Every entry balances; Write refuses to write one that does not.
//
//	sale (finalization)   Dr 売掛金 total            / Cr 売上高 per rate (税区分, tax)
//	payment               Dr 預け金 amount           / Cr 売掛金 amount
//	  provider fee        Dr 支払手数料 fee+VAT (tax = VAT) / Cr 預け金
//	  after a write-off   Dr 売掛金 recovered        / Cr 償却債権取立益 per rate
//	balance movement      carry-over or debit: Dr 前受金 / Cr 売掛金; credit (applied credit, excess payment): Dr 売掛金 / Cr 前受金
//	write-off             Dr 貸倒損失 per rate       / Cr 売掛金 what was owed
//	void                  Dr 売上高 per rate         / Cr 売掛金 total (both less the credit notes that lowered the amount due)
//	  after a write-off   Dr 売掛金 written off, less recovered and credited / Cr 貸倒損失 per rate
//	credit note           Dr 売上高 per rate (返還 税区分, its tax) / Cr by outcome:
//	  reduce_amount_due   Cr 売掛金 total; after the invoice's write-off: Cr 貸倒損失 per rate (貸倒 税区分)
//	  customer_balance    Cr 前受金 total
//	  out_of_band         Cr 未払金 total (the refund account)
//
// # Credit notes
//
// A credit note reverses sales rate by rate with its own per-rate amounts
// and tax (computed once per credit note per rate, as printed on it), on
// 売上高 with the 売上返還 tax category of the rate (課税売上返還込10% and so
// on: the programs report returns apart from sales in the consumption tax
// return; an operator who books returns on a separate account such as
// 売上値引高, or with the sales category, sets BILLING_ACCOUNT_SALES and the
// BILLING_TAX_SALES_RETURN_* variables; exempt sales use the exempt sales
// category). The other side follows the outcome. reduce_amount_due lowers
// what the customer owes, 売掛金, unless the invoice was written off before
// (a credit note at the instant of the write-off counts as after it): the
// amount no longer owed is then no longer a bad debt, and 貸倒損失 is
// credited at the credit note's rates. customer_balance credits the
// customer's balance, 前受金; the balance movement it makes (type
// credit_note) is listed in the csv balance table but has no entry of its
// own in the accounting formats, the credit note's entry being it.
// out_of_band records a refund made outside billingd: 未払金 by default, a
// clearing account that the bank or cash entry of the actual refund (from
// the bank's own data, which the programs import) settles; set
// BILLING_ACCOUNT_REFUND to 現金 or 普通預金 to book the refund as paid.
//
// What is written off is then what the invoice owed at the write-off
// (its amount due plus the credit notes issued since, less the payments
// before it), split over what the credit notes issued before it left of
// each rate; recoveries and the reversal of a void are split over what the
// credit notes left of each rate before them, and credit notes after the
// write-off count like payments in what is still written off. A void
// reverses only what the credit notes that lowered the amount due left of
// the sale; customer_balance and out_of_band credit notes stay booked (the
// customer keeps the credit or the refund).
//
// 前受金 mirrors the customers' balance ledger: its balance is the sum of the
// customers' balances (a credit the customer can use is a credit balance; an
// amount carried to the next invoice because it was below the Konbini
// minimum is a debit balance until that invoice takes it over). A payment is
// always booked against 売掛金 in full; when billingd keeps part or all of it
// as a credit (an excess, or a payment on a voided invoice) the balance
// movement moves that part on to 前受金.
//
// What is written off is what the invoice still owed when it was marked
// uncollectible, counting the payments made before that instant (by the
// provider's payment time). Payments after it recover the written-off amount
// first (償却債権取立益); a later void reverses the sale and what is still
// written off. Split across rates in proportion to the invoice's rates; a
// part that is an earlier carried balance has tax category 対象外.
//
// With this, over all time, 売掛金 equals the amount remaining of open
// invoices plus, for voided ones, the balance applied to them less what was
// paid on them (billingd keeps such money without crediting it); 前受金
// equals the customers' balances; 預け金 equals the net of paid vouchers;
// 売上高 equals the totals of finalized invoices less the credit notes and
// less, for voided invoices, what the credit notes left of them; 未払金 the
// out_of_band credit notes.
//
// # Account settings
//
// Account names, sub-accounts and tax categories must match the customer's
// chart of accounts. Accounts holds them; AccountsFromEnv reads:
//
//	BILLING_ACCOUNT_RECEIVABLE        売掛金          BILLING_ACCOUNT_RECEIVABLE_SUB
//	BILLING_ACCOUNT_SALES             売上高          BILLING_ACCOUNT_SALES_SUB
//	BILLING_ACCOUNT_PROVIDER          預け金          BILLING_ACCOUNT_PROVIDER_SUB ("{provider}" → sandbox, opn, stripe; freee's 決済口座 if set)
//	BILLING_ACCOUNT_FEES              支払手数料      BILLING_ACCOUNT_FEES_SUB
//	BILLING_ACCOUNT_CUSTOMER_BALANCE  前受金          BILLING_ACCOUNT_CUSTOMER_BALANCE_SUB
//	BILLING_ACCOUNT_BAD_DEBT          貸倒損失
//	BILLING_ACCOUNT_RECOVERY          償却債権取立益
//	BILLING_ACCOUNT_REFUND            未払金          BILLING_ACCOUNT_REFUND_SUB
//	BILLING_TAX_SALES_10, BILLING_TAX_SALES_8, BILLING_TAX_SALES_EXEMPT, BILLING_TAX_FEES,
//	BILLING_TAX_SALES_RETURN_10, BILLING_TAX_SALES_RETURN_8,
//	BILLING_TAX_BAD_DEBT_10, BILLING_TAX_BAD_DEBT_8, BILLING_TAX_RECOVERY_10, BILLING_TAX_RECOVERY_8, BILLING_TAX_NONE
//
// Tax categories default per format (DefaultAccounts): yayoi 課税売上込10% /
// 課税売上込軽減8% / 非課売上 / 課対仕入込10%適格, returns 課税売上返還込10% /
// 課税売上返還込軽減8%; freee and csv 課税売上10% / 課税売上8%(軽) / 非課売上 /
// 課対仕入10%, returns 課税売返10% / 課税売返8%(軽); moneyforward 課売 10% /
// 課売 8%(軽) / 非売 / 課仕 10%, returns 課売返 10% / 課売返 8%(軽); 対象外 for
// lines outside the tax. A variable set applies to every format.
//
// # Shift_JIS
//
// yayoi, freee and moneyforward files are Shift_JIS (golang.org/x/text's,
// which is Windows' CP932 for these characters). Before encoding, the
// characters in LookAlikes are replaced by the ones Japanese software shows:
//
//	〜 U+301C → ～ U+FF5E    − U+2212 → － U+FF0D    — U+2014 → ― U+2015
//	– U+2013 → － U+FF0D    ‑ U+2011 → ‐ U+2010    ‖ U+2016 → ∥ U+2225
//	¥ U+00A5 → ￥ U+FFE5    ¢ U+00A2 → ￠ U+FFE0    £ U+00A3 → ￡ U+FFE1
//	¬ U+00AC → ￢ U+FFE2    no-break space U+00A0 → space
//
// Any other character Shift_JIS cannot hold (an emoji, 𠮷) fails the export
// with an EINVALID error naming the row (its line number in the file), the
// source (invoice, customer) and the column. Nothing is dropped silently.
package export
