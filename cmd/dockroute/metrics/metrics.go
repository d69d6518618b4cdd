// Package metrics is the daemon's Prometheus metrics and its HTTP
// endpoints: /metrics, /healthz, /explain and, when asked, Go's profiler.
package metrics

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dockroute/dockroute/provider/contract"
	"github.com/dockroute/dockroute/provider/docker"
	"github.com/dockroute/dockroute/provider/route"
	"github.com/dockroute/dockroute/render/caddy/lookup"
	"github.com/dockroute/dockroute/render/output"
)

// Metrics are dockroute's Prometheus metrics, on a registry of its own.
// Container counts and Docker state are read from the watcher at scrape
// time, so they can never drift from what dockroute actually believes.
type Metrics struct {
	reg            *prometheus.Registry
	routes         prometheus.Gauge
	unavailable    prometheus.Gauge
	publishes      *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	caddyErrors    prometheus.Counter
	// changeToPublish is from a Docker event's arrival to the publish
	// that carries it: the quiet window, the inspect, the table, the
	// render and the write.
	changeToPublish prometheus.Histogram
}

// New registers the metrics; those of delivery only with dl (nil when the
// proxy cannot be asked).
func New(w *docker.Fleet, dl *output.Delivery) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockroute_routes", Help: "Routes (host and path) in the last table published.",
		}),
		unavailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockroute_unavailable_routes", Help: "Routes in the last table published that answer 503: their containers all stopped within --unavailable-grace.",
		}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockroute_publishes_total", Help: "Publish attempts by result: written (the proxy's config changed: a Traefik file, a Caddy load), answered (with --caddy-dns, only Caddy's upstream lookups answer differently), unchanged or error.",
		}, []string{"result"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dockroute_publish_duration_seconds", Help: "Time to render and publish a table.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		caddyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockroute_caddy_push_errors_total", Help: "Caddy pushes and checks that failed.",
		}),
		changeToPublish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dockroute_docker_change_publish_seconds", Help: "From a Docker event's arrival (or a sync finding a change) to the publish that carries it to the proxy: quiet window, inspect, table, render and write.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	m.reg.MustRegister(m.routes, m.unavailable, m.publishes, m.publishSeconds, m.caddyErrors, m.changeToPublish,
		newEngineCollector(w),
		newContainerCollector(w),
		// The process's own: goroutines, heap, GC, file descriptors, CPU.
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if dl != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "dockroute_delivered", Help: "1 when the proxy confirmed it runs every route dockroute published (Caddy: its admin API; Traefik: its API, with --traefik-api), else 0.",
			}, func() float64 { ok, _, _ := dl.State(); return b2f(ok) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "dockroute_undelivered_routes", Help: "Routes (Traefik: routers) dockroute published that the proxy does not run.",
			}, func() float64 { _, n, _ := dl.State(); return float64(n) }),
		)
	}
	for _, r := range []string{"written", "answered", "unchanged", "error"} {
		m.publishes.WithLabelValues(r) // show zeros before the first publish
	}
	return m
}

// CountLookups exports how many upstream lookups the server answered.
func (m *Metrics) CountLookups(srv *lookup.Server) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dockroute_caddy_lookups_total", Help: "Caddy's upstream lookups answered (--caddy-dns). It grows while Caddy serves looked-up routes; flat under traffic means Caddy does not reach dockroute.",
	}, func() float64 { return float64(srv.Queries.Load()) }))
}

// CountAsks exports Caddy's asks for on-demand certificates (--caddy-tls
// with looked-up hosts), approved and refused since the start.
func (m *Metrics) CountAsks(asks func() (approved, refused uint64)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dockroute_caddy_certificates_approved_total", Help: "Caddy's asks for an on-demand certificate that dockroute approved: a routed host, a --caddy-tls-allow name or one of Caddy's own config. Each is a certificate obtained, or loaded from Caddy's storage.",
		}, func() float64 { a, _ := asks(); return float64(a) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dockroute_caddy_certificates_refused_total", Help: "Caddy's asks for an on-demand certificate that dockroute refused: TLS handshakes for names nothing routes (scanners, names pointed at the server by others).",
		}, func() float64 { _, r := asks(); return float64(r) }),
	)
}

// CountHolds exports the holding endpoint's requests: held now, and
// released to a container or answered 503 since the start.
func (m *Metrics) CountHolds(stats func() (held int64, released, expired uint64)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dockroute_held_requests", Help: "Requests the holding endpoint holds now: their host has no ready container yet.",
		}, func() float64 { h, _, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dockroute_held_released_total", Help: "Held requests forwarded to a container once one was ready.",
		}, func() float64 { _, r, _ := stats(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dockroute_held_expired_total", Help: "Held requests answered 503 after --hold passed without a ready container.",
		}, func() float64 { _, _, e := stats(); return float64(e) }),
	)
}

// CountSleeps exports --sleep's work: containers asleep now, and how many
// were put to sleep and woken since the start.
func (m *Metrics) CountSleeps(stats func() (sleeping int, slept, woken uint64)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dockroute_sleeping_containers", Help: "Containers dockroute put to sleep (stopped when idle) that no request has woken yet.",
		}, func() float64 { n, _, _ := stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dockroute_slept_total", Help: "Containers put to sleep after their dockroute.idle without a request.",
		}, func() float64 { _, n, _ := stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dockroute_woken_total", Help: "Starts of sleeping containers asked for by a request.",
		}, func() float64 { _, _, n := stats(); return float64(n) }),
	)
}

// Observe records one publish.
func (m *Metrics) Observe(t route.Table, took time.Duration, did output.Outcome, err error) {
	m.publishSeconds.Observe(took.Seconds())
	if err != nil {
		m.publishes.WithLabelValues("error").Inc()
		return
	}
	m.publishes.WithLabelValues(string(did)).Inc()
	m.routes.Set(float64(len(t.Routes)))
	down := 0
	for _, r := range t.Routes {
		if r.Down() {
			down++
		}
	}
	m.unavailable.Set(float64(down))
}

// engineCollector reports each engine's connection at scrape time.
type engineCollector struct {
	f                     *docker.Fleet
	connected, reconnects *prometheus.Desc
}

func newEngineCollector(f *docker.Fleet) engineCollector {
	return engineCollector{f: f,
		connected:  prometheus.NewDesc("dockroute_docker_connected", "1 while dockroute follows the engine's event stream (and the engine answers).", []string{"engine"}, nil),
		reconnects: prometheus.NewDesc("dockroute_docker_reconnects_total", "Times dockroute connected to the engine again after losing it.", []string{"engine"}, nil),
	}
}

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.reconnects
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range c.f.Engines() {
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, b2f(e.Connected), e.Name)
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(e.Reconnects), e.Name)
	}
}

// containerCollector counts the verdicts at scrape time.
type containerCollector struct {
	w                 *docker.Fleet
	containers, refus *prometheus.Desc
}

func newContainerCollector(w *docker.Fleet) containerCollector {
	return containerCollector{w: w,
		containers: prometheus.NewDesc("dockroute_containers",
			"Running containers seen, by state: routed, refused (opted in but not routed), ignored (not opted in) or unknown (Docker failed to inspect it).", []string{"state"}, nil),
		refus: prometheus.NewDesc("dockroute_containers_refused",
			"Opted-in containers not routed, by reason.", []string{"reason"}, nil),
	}
}

func (c containerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.containers
	ch <- c.refus
}

func (c containerCollector) Collect(ch chan<- prometheus.Metric) {
	states := map[string]int{"routed": 0, "refused": 0, "ignored": 0, "unknown": 0}
	reasons := map[string]int{}
	for _, v := range c.w.Verdicts() {
		switch {
		case v.Routed():
			states["routed"]++
		case v.Code == contract.CodeInspectFailed:
			states["unknown"]++
		case v.OptedIn:
			states["refused"]++
			reasons[string(v.Code)]++
		default:
			states["ignored"]++
		}
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(c.containers, prometheus.GaugeValue, float64(n), s)
	}
	for r, n := range reasons {
		ch <- prometheus.MustNewConstMetric(c.refus, prometheus.GaugeValue, float64(n), r)
	}
}

// Handler serves /metrics, /healthz and /explain (explain's answer, as
// the daemon sees it). Healthy means a complete publish
// has happened, Docker is connected and the last publish succeeded;
// otherwise 503 says which is not (health returns the reason).
//
// With profile, Go's profiler (net/http/pprof) is served too under
// /debug/pprof/: it is off by default, as a profile shows the process's
// memory; the metrics address is the operator's, never a tenant's.
func (m *Metrics) Handler(health func() (bool, string), explain http.HandlerFunc, profile bool) http.Handler {
	mux := http.NewServeMux()
	if profile {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/explain", explain)
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		if ok, text := health(); !ok {
			http.Error(rw, text, http.StatusServiceUnavailable)
		} else {
			fmt.Fprintln(rw, text)
		}
	})
	return mux
}

// CaddyError counts a failed Caddy push or check.
func (m *Metrics) CaddyError() { m.caddyErrors.Inc() }

// ObserveChange records the time from a Docker change to the publish
// that carried it.
func (m *Metrics) ObserveChange(d time.Duration) { m.changeToPublish.Observe(d.Seconds()) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
