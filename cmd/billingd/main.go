// Command billingd is the billing and invoicing daemon. `billingd` (or
// `billingd serve`) runs it; `migrate`, `bill`, `config` and `version` are
// one-shot commands. All configuration comes from BILLING_* environment
// variables (see Config).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"

	"billingd/billing"
	"billingd/billing/admin"
	"billingd/billing/api"
	"billingd/billing/mail"
	"billingd/billing/metrics"
	"billingd/billing/outbox"
	"billingd/billing/scheduler"
	"billingd/billing/store"
	"billingd/billing/webhook"
	"billingd/collection"
	"billingd/collection/sandbox"
	"billingd/invoice"
	"billingd/invoice/delivery"
	"billingd/subscription"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once, whatever shutdown is waiting for
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "billingd:", err)
		os.Exit(1)
	}
}

// run dispatches a command line.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "billingd", Version)
		return nil
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg, Stdout: stdout, Stderr: stderr}
	switch cmd {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		migrate := fs.Bool("migrate", false, "apply pending migrations before starting")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *migrate {
			m.Config.Migrate = "true"
		}
		if err := m.Run(ctx); err != nil {
			m.Close()
			return err
		}
		err := m.Wait(ctx)
		return errors.Join(err, m.Close())
	case "migrate":
		m.Config.Migrate = "true"
		if err := m.open(ctx); err != nil {
			return err
		}
		return m.Close()
	case "bill":
		fs := flag.NewFlagSet("bill", flag.ContinueOnError)
		at := fs.String("at", "", "run as of this RFC 3339 time instead of now")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if err := m.open(ctx); err != nil {
			return err
		}
		defer m.Close()
		now := m.Clock.Now()
		if *at != "" {
			if now, err = time.Parse(time.RFC3339, *at); err != nil {
				return fmt.Errorf("--at must be an RFC 3339 time: %w", err)
			}
		}
		run, err := m.Subscriptions.BillDue(ctx, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "billing run at %s: %d invoices, %d subscriptions ended\n", now.Format(time.RFC3339), run.Invoices, run.Canceled)
		return nil
	case "export":
		return m.export(ctx, args, getenv)
	case "config":
		fmt.Fprint(stdout, cfg.Dump())
		return nil
	}
	return fmt.Errorf("unknown command %q (commands: serve, migrate, bill, export, config, version)", cmd)
}

// Main is the daemon, built so that tests can run it whole: set Config, call
// Run, talk to Addr, then Close.
type Main struct {
	Config Config
	Stdout io.Writer
	Stderr io.Writer

	Logger        *slog.Logger
	DB            *store.DB
	Clock         billing.Clock
	TestClock     *scheduler.TestClock
	Metrics       *metrics.Metrics
	Subscriptions *subscription.Service
	Invoices      *invoice.Service
	Scheduler     *scheduler.Scheduler
	// Addr is the address the HTTP server listens on, known after Run.
	Addr string
	// APIKey is the generated key on a first start without BILLING_API_KEY.
	APIKey string

	// Collector issues vouchers and applies payments, Delivery renders and
	// sends customer documents, Outbox runs queued side effects; known after Run.
	Collector *collection.Collector
	Delivery  *delivery.Service
	Outbox    *outbox.Worker
	// Webhooks delivers events to the operator's webhook endpoints.
	Webhooks *webhook.Service

	server   *http.Server
	listener net.Listener
	failed   chan error // the HTTP server stopped on its own
	sandbox  *sandbox.Server
	kick     chan struct{}
	quit     chan struct{} // stops the kick loop
	cron     *cron.Cron
	stopping atomic.Bool
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// open sets up logging, the database and the services.
func (m *Main) open(ctx context.Context) error {
	level := slog.LevelInfo
	level.UnmarshalText([]byte(m.Config.LogLevel)) //nolint:errcheck
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "json" {
		m.Logger = slog.New(slog.NewJSONHandler(m.Stderr, opts))
	} else {
		m.Logger = slog.New(slog.NewTextHandler(m.Stderr, opts))
	}
	if m.Config.DatabaseURL == "" {
		if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
			return err
		}
	}
	db, err := store.Open(ctx, m.Config.DSN())
	if err != nil {
		return err
	}
	m.DB = db
	pending, err := db.Pending(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		auto := m.Config.Migrate == "true" || (m.Config.Migrate == "auto" && db.Engine == store.SQLite)
		if !auto {
			return fmt.Errorf("the database schema is out of date (%d pending migrations: %s); run `billingd migrate` or start with --migrate", len(pending), strings.Join(pending, ", "))
		}
		applied, err := db.Migrate(ctx)
		if err != nil {
			return err
		}
		m.Logger.Info("migrations applied", "migrations", applied)
	}

	m.Clock = billing.WallClock{}
	if m.Config.Clock == "test" {
		start := time.Now()
		if m.Config.TestClockStart != "" {
			start, _ = time.Parse(time.RFC3339, m.Config.TestClockStart)
		}
		if m.TestClock, err = scheduler.LoadTestClock(ctx, db, start); err != nil {
			return err
		}
		m.Clock = m.TestClock
	}
	settings := m.Config.Settings()
	m.Metrics = metrics.New()
	m.Subscriptions = &subscription.Service{DB: db, Clock: m.Clock, Settings: settings}
	m.Invoices = &invoice.Service{DB: db, Clock: m.Clock, Settings: settings, PublicURL: m.Config.PublicURL}
	m.Scheduler = &scheduler.Scheduler{Logger: m.Logger, Metrics: m.Metrics, Jobs: m.jobs()}
	return nil
}

// jobs is the registry of scheduled work, driven by cron on the wall clock
// and by Advance on the test clock.
func (m *Main) jobs() []scheduler.Job {
	return []scheduler.Job{{
		Name: "billing_run",
		Run: func(ctx context.Context, now time.Time) error {
			run, err := m.Subscriptions.BillDue(ctx, now)
			m.Metrics.InvoicesCreated.Add(float64(run.Invoices))
			if run.Invoices > 0 || run.Canceled > 0 {
				m.Logger.Info("billing run", "at", now, "invoices", run.Invoices, "ended", run.Canceled, "batches", run.Batches)
			}
			return err
		},
		Next: m.Subscriptions.NextDue,
	}}
}

// apiKey returns the hash of the operator's API key: BILLING_API_KEY's, or
// one generated on the first start, printed once and stored only as a hash.
func (m *Main) apiKey(ctx context.Context) (string, error) {
	if m.Config.APIKey != "" {
		return api.HashKey(m.Config.APIKey), nil
	}
	hash, ok, err := store.Setting(ctx, m.DB, "api_key_hash")
	if err != nil || ok {
		return hash, err
	}
	m.APIKey = "sk_" + billing.NewToken()
	hash = api.HashKey(m.APIKey)
	if err := store.SetSetting(ctx, m.DB, "api_key_hash", hash); err != nil {
		return "", err
	}
	fmt.Fprintf(m.Stdout, "Generated API key (shown once, store it now): %s\n", m.APIKey)
	return hash, nil
}

// Run opens everything, starts the HTTP server and, on the wall clock, the
// cron schedule, and returns; the daemon runs until Close.
func (m *Main) Run(ctx context.Context) error {
	if err := m.open(ctx); err != nil {
		return err
	}
	hash, err := m.apiKey(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return err
	}
	m.Addr, m.listener = ln.Addr().String(), ln
	if m.Config.PublicURL == "" {
		m.Config.PublicURL = "http://" + m.Addr
	}
	m.Invoices.PublicURL = m.Config.PublicURL

	provider, mount, jobs, err := m.provider(ctx, hash)
	if err != nil {
		ln.Close()
		return err
	}
	m.Collector = &collection.Collector{
		DB: m.DB, Clock: m.Clock, Provider: provider, Settings: m.Config.Settings(), Logger: m.Logger,
		SplitAboveMax: m.Config.SplitVouchers, Reissues: m.Config.VoucherReissues, ReissueDays: m.Config.ReissueDays,
		ActionRequired: m.Metrics.CollectionActionRequired, Dunning: m.Config.Dunning(), Concurrency: m.Config.Concurrency,
	}
	sender, err := mail.NewSender(m.Config.SMTPURL, filepath.Join(m.Config.DataDir, "outbox"))
	if err != nil {
		ln.Close()
		return fmt.Errorf("BILLING_SMTP_URL: %w", err)
	}
	m.Delivery = &delivery.Service{DB: m.DB, Clock: m.Clock, Settings: m.Config.Settings(), Sender: sender,
		From: mail.Address{Name: m.Config.IssuerName, Email: m.Config.MailFrom}, PublicURL: m.Config.PublicURL,
		Logger: m.Logger, ReminderDays: m.Config.ReminderDays, Dunning: m.Config.Dunning()}
	if m.sandbox != nil {
		m.Delivery.Simulate = m.simulate
	}
	m.Outbox = &outbox.Worker{DB: m.DB, Logger: m.Logger, Clock: m.Clock, Concurrency: m.Config.Concurrency, Handlers: map[string]outbox.Handler{delivery.TaskEmail: m.Delivery.HandleEmail}, OnFailed: m.Delivery.OnFailed}
	m.Outbox.Handlers[invoice.TaskCancelVoucher] = m.Collector.HandleCancelVoucher // vouchers replaced after a credit note
	// Jobs run in this order at every instant: bill, let the sandbox expire
	// vouchers, collect, enqueue reminders, then send what the others queued.
	m.Scheduler.Jobs = append(append(m.Scheduler.Jobs, jobs...),
		scheduler.Job{Name: "collection", Run: m.Collector.Run, Next: m.Collector.Next},
		scheduler.Job{Name: "reminders", Run: m.Delivery.Remind, Next: m.Delivery.NextReminder},
		scheduler.Job{Name: "outbox", Run: m.Outbox.Run, Next: m.Outbox.Next})
	m.Webhooks = &webhook.Service{DB: m.DB, Clock: m.Clock, Logger: m.Logger, AllowPrivate: m.Config.WebhookAllowPrivate}
	m.Scheduler.Jobs = append(m.Scheduler.Jobs, scheduler.Job{Name: "webhooks", Run: m.Webhooks.Run, Next: m.Webhooks.Next})
	m.kick = make(chan struct{}, 1)
	kick := func() {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	srv := &api.Server{
		DB: m.DB, Subscriptions: m.Subscriptions, Invoices: m.Invoices, Scheduler: m.Scheduler,
		TestClock: m.TestClock, Clock: m.Clock, Metrics: m.Metrics, Logger: m.Logger, APIKeyHash: hash,
		Ready: func() bool { return !m.stopping.Load() }, Kick: kick, Documents: m.Delivery,
		Mount: []func(*http.ServeMux){func(mux *http.ServeMux) {
			wh := m.Collector.WebhookHandler(kick)
			mux.Handle("POST /webhooks/opn", providerOnly(provider, "opn", "sandbox", wh))
			mux.Handle("POST /webhooks/stripe", providerOnly(provider, "stripe", "", wh))
		}},
	}
	if mount != nil {
		srv.Mount = append(srv.Mount, mount)
	}
	srv.Mount = append(srv.Mount, m.Delivery.PayPage)
	srv.Webhooks = m.Webhooks
	srv.Export = m.exportHandler(srv, os.Getenv)
	// --- admin dashboard (issue 7): /admin/, see package billing/admin ---
	adm := &admin.Server{DB: m.DB, Clock: m.Clock, Settings: m.Config.Settings(), Invoices: m.Invoices,
		Documents: m.Delivery, Export: m.exportBase(os.Getenv), APIKeyHash: hash, Password: m.Config.AdminPassword, Kick: kick, Logger: m.Logger,
		SecureCookies: strings.HasPrefix(m.Config.PublicURL, "https://")}
	srv.Mount = append(srv.Mount, adm.Mount)
	// --- end admin dashboard ---
	m.failed = make(chan error, 1)
	m.server = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.failed <- fmt.Errorf("http server: %w", err)
		}
	}()

	// Background work gets its own context, canceled only after it has
	// been given the chance to finish in Close.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	if m.TestClock == nil {
		if m.cron, err = m.Scheduler.Cron(bg, m.Config.Cron, m.Config.Settings().Location, m.Clock); err != nil {
			return err
		}
		m.cron.Start()
		m.wg.Add(1)
		go func() { // catch up at start; errors are logged
			defer m.wg.Done()
			_ = m.Scheduler.RunNow(bg, m.Clock)
		}()
	}
	// A kick (a webhook arrived, an invoice was finalized) runs collection
	// now instead of at the next tick, as a round of the scheduler (one
	// round at a time, panics recovered, errors logged and counted).
	quit := make(chan struct{})
	m.quit = quit
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			select {
			case <-quit:
				return
			case <-m.kick:
				_ = m.Scheduler.RunNow(bg, m.Clock, "collection", "outbox", "webhooks")
			}
		}
	}()
	where := "database " + m.Config.DSN()
	if m.DB.Engine == store.Postgres {
		where = "PostgreSQL " + mask(m.Config.DSN())
	}
	m.Logger.Info("billingd started", "url", "http://"+m.Addr, "data_dir", m.Config.DataDir, "db", where,
		"provider", m.Config.Provider, "clock", m.Config.Clock, "cron", m.Config.Cron, "time_zone", m.Config.TimeZone)
	fmt.Fprintf(m.Stdout, "billingd listening on http://%s (%s, data in %s, provider %s, %s clock)\n",
		m.Addr, where, m.Config.DataDir, m.Config.Provider, m.Config.Clock)
	return nil
}

// shutdownGrace is how long Close lets the running round of jobs finish
// before canceling it.
const shutdownGrace = 10 * time.Second

// Wait returns when ctx is done (a signal: nil) or the HTTP server has
// stopped on its own (its error). Close follows either way.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down (a second signal stops at once)")
		return nil
	case err := <-m.failed:
		m.Logger.Error("shutting down: the HTTP server failed", "err", err)
		return err
	}
}

// Close shuts down in order: stop cron and the kicks and let the running
// round finish (it may still call the sandbox over HTTP), drain HTTP, then
// cancel what is left and close the database.
func (m *Main) Close() error {
	m.stopping.Store(true)
	if m.cron != nil {
		<-m.cron.Stop().Done()
	}
	if m.quit != nil {
		close(m.quit)
		m.quit = nil // Close may be called again
	}
	// The running round (a kick, the start-up catch-up, a request's) may
	// finish, for a while: a provider that does not answer is cut off.
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		if m.Scheduler != nil {
			m.Scheduler.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		m.Logger.Warn("shutdown: the running round did not finish in time; canceling it", "grace", shutdownGrace)
		if m.cancel != nil {
			m.cancel()
		}
		<-done
	}
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		errs = append(errs, m.server.Shutdown(ctx))
	}
	if m.Scheduler != nil {
		m.Scheduler.Wait() // one a drained request was still running
	}
	if m.cancel != nil {
		m.cancel()
	}
	if m.Webhooks != nil {
		m.Webhooks.Close() // deliveries in flight end within their timeout
	}
	if m.Delivery != nil {
		if c, ok := m.Delivery.Sender.(io.Closer); ok {
			c.Close() // SMTP connections kept between messages
		}
	}
	if m.sandbox != nil {
		m.sandbox.Close()
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
	}
	return errors.Join(errs...)
}

// providerOnly serves h only when the configured provider is one of names;
// other providers' webhooks are 404.
func providerOnly(p collection.Provider, name, alt string, h http.Handler) http.Handler {
	if p.Name() != name && (alt == "" || p.Name() != alt) {
		return http.NotFoundHandler()
	}
	return h
}
