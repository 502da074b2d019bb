// Package metrics defines billingd's Prometheus metrics in one registry that
// is passed to whoever records them, so tests can run several daemons in one
// process without global collisions.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are billingd's Prometheus collectors.
type Metrics struct {
	Registry        *prometheus.Registry
	InvoicesCreated prometheus.Counter
	JobDuration     *prometheus.HistogramVec
	JobErrors       *prometheus.CounterVec
	HTTPRequests    *prometheus.CounterVec
	// CollectionActionRequired counts invoices whose voucher the provider refused.
	CollectionActionRequired prometheus.Counter
}

// New returns the metrics registered in a new registry, with Go and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		InvoicesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_invoices_created_total", Help: "Invoices created by billing runs.",
		}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "billingd_job_duration_seconds", Help: "Duration of scheduled jobs such as the billing sweep.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"job"}),
		JobErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_job_errors_total", Help: "Scheduled job runs that failed or panicked.",
		}, []string{"job"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	m.CollectionActionRequired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "billingd_collection_action_required_total", Help: "Invoices whose Konbini voucher the provider refused or could not take.",
	})
	m.Registry.MustRegister(m.CollectionActionRequired, m.InvoicesCreated, m.JobDuration, m.JobErrors, m.HTTPRequests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
