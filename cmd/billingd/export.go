package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"

	"billingd/billing"
	"billingd/billing/api"
	"billingd/billing/export"
)

// exportBase returns the export options the daemon's configuration fixes:
// the time zone (BILLING_TIMEZONE) and the account settings
// (BILLING_ACCOUNT_*, BILLING_TAX_*; see package export).
func (m *Main) exportBase(getenv func(string) string) export.Options {
	return export.Options{Location: m.Config.Settings().Location, Accounts: export.AccountsFromEnv(getenv)}
}

// export runs `billingd export --kind KIND --format FORMAT --from DATE --to
// DATE [--out FILE] [--bom]`. With --out the file appears only when the
// export succeeded (it is written as FILE.partial and renamed); without it
// the export streams to standard output.
func (m *Main) export(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	kind := fs.String("kind", "", "invoices, payments, balance, credit_notes or journal")
	format := fs.String("format", "csv", "csv, yayoi, freee or moneyforward")
	from := fs.String("from", "", "first day, YYYY-MM-DD in BILLING_TIMEZONE")
	to := fs.String("to", "", "last day, included")
	out := fs.String("out", "", "write to this file instead of standard output")
	bom := fs.Bool("bom", false, "start a csv file with a UTF-8 byte order mark (for Excel)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export: unexpected argument %q", fs.Arg(0))
	}
	o := m.exportBase(getenv)
	o.BOM = *bom
	var err error
	if o.Kind, err = export.ParseKind("--kind", *kind); err != nil {
		return cliError(err)
	}
	if o.Format, err = export.ParseFormat("--format", *format); err != nil {
		return cliError(err)
	}
	if o.From, err = export.ParseDate("--from", *from, o.Location); err != nil {
		return cliError(err)
	}
	if o.To, err = export.ParseDate("--to", *to, o.Location); err != nil {
		return cliError(err)
	}
	if err := m.open(ctx); err != nil {
		return err
	}
	defer m.Close()
	if *out == "" {
		return cliError(export.Write(ctx, m.DB, m.Stdout, o))
	}
	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = export.Write(ctx, m.DB, f, o)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		return cliError(err)
	}
	return nil
}

// cliError turns a billing error into its message, which names the problem
// without the API's decoration.
func cliError(err error) error {
	var be *billing.Error
	if errors.As(err, &be) {
		return errors.New(be.Message)
	}
	return err
}

// exportHandler serves GET /v1/exports/{kind}; the API adds authentication.
func (m *Main) exportHandler(srv *api.Server, getenv func(string) string) http.Handler {
	return export.Handler(m.DB, m.exportBase(getenv), srv.Error)
}
