package consolemeauth

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The collectors are package-level so that their counts survive config
// reloads; each new config's registry gets the same collectors.
var metrics = struct {
	created, approved, collected, expired prometheus.Counter
	cancelled                             prometheus.Counter
	refused                               *prometheus.CounterVec
	logins                                *prometheus.CounterVec
	loginsByMethod                        *prometheus.CounterVec
	storeErrors                           prometheus.Counter
	revoked                               *prometheus.CounterVec
	tokensRefused                         *prometheus.CounterVec
	pending                               prometheus.GaugeFunc
	duration                              *prometheus.HistogramVec
}{
	created: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "challenges_created_total",
		Help: "Challenges made by the generator.",
	}),
	approved: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "challenges_approved_total",
		Help: "Challenges approved in a browser.",
	}),
	cancelled: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "challenges_cancelled_total",
		Help: "Challenges cancelled in a browser (\"This wasn't me\").",
	}),
	collected: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "challenges_collected_total",
		Help: "Tokens handed to a poller (successful CLI logins).",
	}),
	expired: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "challenges_expired_total",
		Help: "Polls that found their challenge expired.",
	}),
	refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "challenges_refused_total",
		Help: "Validator and poller requests refused, by reason.",
	}, []string{"reason"}),
	logins: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "saml_logins_total",
		Help: "SAML logins at the assertion consumer, by result.",
	}, []string{"result"}),
	loginsByMethod: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "logins_total",
		Help: "Logins at the identity provider, by method (saml, oidc) and result.",
	}, []string{"method", "result"}),
	revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "sessions_revoked_total",
		Help: "Revocations made, by how (logout, admin, sessions_page).",
	}, []string{"reason"}),
	tokensRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "tokens_refused_total",
		Help: "Requests whose consoleme_auth token the proxy refused (revoked, blocked or the group policy), by reason.",
	}, []string{"reason"}),
	storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "consoleme_auth", Name: "store_errors_total",
		Help: "Challenge store calls that failed (unreachable or full).",
	}),
	pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "consoleme_auth", Name: "challenges_pending",
		Help: "Challenges held by the memory stores of this process.",
	}, func() float64 {
		n := 0
		memoryStores.Range(func(_, v any) bool {
			n += v.(memoryStore).Len()
			return true
		})
		return float64(n)
	}),
	duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "consoleme_auth", Name: "request_duration_seconds",
		Help:    "Time to answer the CLI routes, by route.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"route"}),
}

// registerMetrics adds the collectors to a config's registry. Two handlers
// in one config share them, so "already registered" is fine.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.created, metrics.approved, metrics.cancelled, metrics.collected, metrics.expired,
		metrics.refused, metrics.logins, metrics.loginsByMethod, metrics.storeErrors, metrics.revoked, metrics.tokensRefused, metrics.pending, metrics.duration} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// countLogin counts a login's result, by method; SAML logins also keep
// their own counter, which predates OpenID Connect.
func countLogin(via, result string) {
	metrics.loginsByMethod.WithLabelValues(via, result).Inc()
	if via == signInSAML {
		metrics.logins.WithLabelValues(result).Inc()
	}
}

// The CLI routes' durations, looked up once rather than by label on every
// request.
var (
	generatorDuration = metrics.duration.WithLabelValues("generator")
	pollerDuration    = metrics.duration.WithLabelValues("poller")
)

// observe records in o how long a CLI route took since start.
func observe(o prometheus.Observer, start time.Time) {
	o.Observe(time.Since(start).Seconds())
}
