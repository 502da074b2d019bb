package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"billingd/billing"
	"billingd/billing/scheduler"
)

// Config is billingd's configuration, read from the environment. Each field's
// env tag names its variable; secrets (secret:"true") also accept NAME_FILE,
// the path of a file holding the value, and are masked by `billingd config`.
type Config struct {
	Addr                string `env:"BILLING_ADDR" default:"127.0.0.1:8080"`
	DataDir             string `env:"BILLING_DATA_DIR" default:"./billingd-data"`
	DatabaseURL         string `env:"BILLING_DATABASE_URL" secret:"true"`
	Migrate             string `env:"BILLING_MIGRATE" default:"auto"` // auto: SQLite migrates itself, PostgreSQL needs `billingd migrate`
	APIKey              string `env:"BILLING_API_KEY" secret:"true"`
	AdminPassword       string `env:"BILLING_ADMIN_PASSWORD" secret:"true"` // optional second way into /admin/ besides the API key
	Clock               string `env:"BILLING_CLOCK" default:"wall"`
	TestClockStart      string `env:"BILLING_TEST_CLOCK_START"` // RFC 3339; default: the wall time at first start
	Provider            string `env:"BILLING_PROVIDER" default:"sandbox"`
	SMTPURL             string `env:"BILLING_SMTP_URL" secret:"true"`
	MailFrom            string `env:"BILLING_MAIL_FROM" default:"billing@localhost"` // sender of customer e-mails; the issuer name is its display name
	ReminderDays        int    `env:"BILLING_REMINDER_DAYS" default:"3"`             // reminder this many days before a voucher expires
	OpnSecretKey        string `env:"BILLING_OPN_SECRET_KEY" secret:"true"`
	OpnWebhookSecret    string `env:"BILLING_OPN_WEBHOOK_SECRET" secret:"true"`
	OpnURL              string `env:"BILLING_OPN_URL" default:"https://api.omise.co"`
	StripeSecretKey     string `env:"BILLING_STRIPE_SECRET_KEY" secret:"true"`
	StripeWebhookSecret string `env:"BILLING_STRIPE_WEBHOOK_SECRET" secret:"true"`
	StripeURL           string `env:"BILLING_STRIPE_URL" default:"https://api.stripe.com"`
	ProviderTimeout     string `env:"BILLING_PROVIDER_TIMEOUT" default:"30s"`   // one call to Opn or Stripe
	Concurrency         int    `env:"BILLING_CONCURRENCY" default:"4"`          // vouchers created, and e-mails sent, at once
	SplitVouchers       bool   `env:"BILLING_SPLIT_VOUCHERS"`                   // split amounts above the provider maximum
	VoucherReissues     int    `env:"BILLING_VOUCHER_REISSUES" default:"2"`     // new vouchers after one expires unpaid
	ReissueDays         int    `env:"BILLING_VOUCHER_REISSUE_DAYS" default:"7"` // validity of a reissued voucher
	Cron                string `env:"BILLING_CRON" default:"*/5 * * * *"`
	TimeZone            string `env:"BILLING_TIMEZONE" default:"Asia/Tokyo"`
	IssuerName          string `env:"BILLING_ISSUER_NAME" default:"billingd sandbox operator"`
	IssuerAddress       string `env:"BILLING_ISSUER_ADDRESS"`
	IssuerRegNumber     string `env:"BILLING_ISSUER_REGISTRATION_NUMBER"`
	IssuerSoleTrader    bool   `env:"BILLING_ISSUER_SOLE_TRADER"` // skip the corporate check digit
	PublicURL           string `env:"BILLING_PUBLIC_URL"`         // default: http:// and the address listened on
	WebhookAllowPrivate bool   `env:"BILLING_WEBHOOK_ALLOW_PRIVATE"`
	TaxRounding         string `env:"BILLING_TAX_ROUNDING" default:"down"`
	InvoicePrefix       string `env:"BILLING_INVOICE_PREFIX" default:"INV-{year}-"`
	DaysUntilDue        int    `env:"BILLING_DAYS_UNTIL_DUE" default:"30"`
	TrialInvoice        bool   `env:"BILLING_TRIAL_INVOICE"` // a ¥0 invoice when a trial starts, as Stripe does
	LogFormat           string `env:"BILLING_LOG_FORMAT" default:"text"`
	LogLevel            string `env:"BILLING_LOG_LEVEL" default:"info"`

	// Dunning policy (see Dunning) and credit notes.
	DunningReminderDays string `env:"BILLING_DUNNING_REMINDER_DAYS"`                           // days before each voucher's deadline ("7,3,1" or "none"); default BILLING_REMINDER_DAYS
	DunningInvoice      string `env:"BILLING_DUNNING_INVOICE_OUTCOME" default:"open"`          // after the last voucher: open or uncollectible
	DunningSubscription string `env:"BILLING_DUNNING_SUBSCRIPTION_OUTCOME" default:"past_due"` // after the last voucher: past_due, unpaid or canceled
	CreditNotePrefix    string `env:"BILLING_CREDIT_NOTE_PREFIX" default:"CN-{year}-"`         // credit note numbers; a gapless series per prefix
}

// LoadConfig reads the configuration through getenv (os.Getenv in the daemon,
// a map in tests) and checks it.
func LoadConfig(getenv func(string) string) (Config, error) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name := f.Tag.Get("env")
		val := getenv(name)
		if f.Tag.Get("secret") == "true" && val == "" {
			if path := getenv(name + "_FILE"); path != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					return c, fmt.Errorf("%s_FILE: %w", name, err)
				}
				val = strings.TrimSpace(string(b))
			}
		}
		if val == "" {
			val = f.Tag.Get("default")
		}
		switch f.Type.Kind() {
		case reflect.String:
			v.Field(i).SetString(val)
		case reflect.Bool:
			b, err := strconv.ParseBool(orDefault(val, "false"))
			if err != nil {
				return c, fmt.Errorf("%s must be true or false, got %q", name, val)
			}
			v.Field(i).SetBool(b)
		case reflect.Int:
			n, err := strconv.Atoi(val)
			if err != nil {
				return c, fmt.Errorf("%s must be a whole number, got %q", name, val)
			}
			v.Field(i).SetInt(int64(n))
		}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c, c.validate()
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func (c Config) validate() error {
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return fmt.Errorf("BILLING_TIMEZONE %q is not a known time zone: %w", c.TimeZone, err)
	}
	if err := scheduler.ValidateSpec(c.Cron); err != nil {
		return fmt.Errorf("BILLING_CRON %q is not a valid cron schedule (five fields, e.g. \"*/5 * * * *\", or @hourly): %w", c.Cron, err)
	}
	if c.IssuerRegNumber != "" {
		if err := billing.ValidateRegistrationNumber("BILLING_ISSUER_REGISTRATION_NUMBER", c.IssuerRegNumber, !c.IssuerSoleTrader); err != nil {
			return fmt.Errorf("%s (set BILLING_ISSUER_SOLE_TRADER=true for a sole trader's number)", billing.ErrorMessage(err))
		}
	}
	switch {
	case c.Clock != "wall" && c.Clock != "test":
		return fmt.Errorf("BILLING_CLOCK must be wall or test, got %q", c.Clock)
	case c.Provider != "sandbox" && c.Provider != "opn" && c.Provider != "stripe":
		return fmt.Errorf("BILLING_PROVIDER must be sandbox, opn or stripe, got %q", c.Provider)
	case c.Provider == "opn" && c.OpnSecretKey == "":
		return fmt.Errorf("BILLING_PROVIDER=opn needs BILLING_OPN_SECRET_KEY (or BILLING_OPN_SECRET_KEY_FILE)")
	case c.Provider == "stripe" && (c.StripeSecretKey == "" || c.StripeWebhookSecret == ""):
		return fmt.Errorf("BILLING_PROVIDER=stripe needs BILLING_STRIPE_SECRET_KEY and BILLING_STRIPE_WEBHOOK_SECRET")
	case c.VoucherReissues < 0 || c.VoucherReissues > 10:
		return fmt.Errorf("BILLING_VOUCHER_REISSUES must be between 0 and 10, got %d", c.VoucherReissues)
	case !strings.Contains(c.MailFrom, "@") || strings.ContainsAny(c.MailFrom, " <>\r\n"):
		return fmt.Errorf("BILLING_MAIL_FROM must be a bare e-mail address, got %q", c.MailFrom)
	case c.Concurrency < 1 || c.Concurrency > 32:
		return fmt.Errorf("BILLING_CONCURRENCY must be between 1 and 32, got %d", c.Concurrency)
	case c.ReminderDays < 1 || c.ReminderDays > 30:
		return fmt.Errorf("BILLING_REMINDER_DAYS must be between 1 and 30, got %d", c.ReminderDays)
	case c.ReissueDays < 1 || c.ReissueDays > 30:
		return fmt.Errorf("BILLING_VOUCHER_REISSUE_DAYS must be between 1 and 30, got %d", c.ReissueDays)
	case !billing.Rounding(c.TaxRounding).Valid():
		return fmt.Errorf("BILLING_TAX_ROUNDING must be down, up or half_up, got %q", c.TaxRounding)
	case c.Migrate != "auto" && c.Migrate != "true" && c.Migrate != "false":
		return fmt.Errorf("BILLING_MIGRATE must be auto, true or false, got %q", c.Migrate)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("BILLING_LOG_FORMAT must be text or json, got %q", c.LogFormat)
	case c.DaysUntilDue < 0 || c.DaysUntilDue > 365:
		return fmt.Errorf("BILLING_DAYS_UNTIL_DUE must be between 0 and 365, got %d", c.DaysUntilDue)
	case c.InvoicePrefix == "" || len(c.InvoicePrefix) > 32:
		return fmt.Errorf("BILLING_INVOICE_PREFIX must be 1–32 characters, got %q", c.InvoicePrefix)
	}
	if err := c.validateDunning(); err != nil {
		return err
	}
	if d, err := time.ParseDuration(c.ProviderTimeout); err != nil || d <= 0 {
		return fmt.Errorf("BILLING_PROVIDER_TIMEOUT must be a positive duration like 30s, got %q", c.ProviderTimeout)
	}
	if c.TestClockStart != "" {
		if _, err := time.Parse(time.RFC3339, c.TestClockStart); err != nil {
			return fmt.Errorf("BILLING_TEST_CLOCK_START must be an RFC 3339 time: %w", err)
		}
	}
	return nil
}

// DSN returns the database to open: BILLING_DATABASE_URL, or the SQLite file
// in the data directory.
func (c Config) DSN() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "billingd.db")
}

// Settings returns the billing settings the configuration describes.
func (c Config) Settings() billing.Settings {
	s := billing.DefaultSettings()
	s.Location, _ = time.LoadLocation(c.TimeZone)
	s.Rounding = billing.Rounding(c.TaxRounding)
	s.NumberPrefix = c.InvoicePrefix
	s.CreditNotePrefix = c.CreditNotePrefix
	s.DaysUntilDue = c.DaysUntilDue
	s.TrialInvoice = c.TrialInvoice
	s.Issuer = billing.Issuer{Name: c.IssuerName, Address: c.IssuerAddress, RegistrationNumber: c.IssuerRegNumber}
	return s
}

// Dump returns the effective configuration, one VAR=value per line, secrets
// masked.
func (c Config) Dump() string {
	var b strings.Builder
	v := reflect.ValueOf(c)
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		if f.Tag.Get("secret") == "true" && val != "" {
			val = mask(val)
		}
		fmt.Fprintf(&b, "%s=%s\n", f.Tag.Get("env"), val)
	}
	return b.String()
}

// mask hides a secret; of a URL it keeps the scheme, host and path (the
// user information and the query, which may carry a password, are hidden).
func mask(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "****"
	}
	out := u.Scheme + "://"
	if u.User != nil {
		out += "****@"
	}
	out += u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		out += "?****"
	}
	return out
}
