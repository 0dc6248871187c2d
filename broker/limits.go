package broker

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the bounds in Config.
const (
	// DefaultMaxSidBytes: Tor's proxies send 24 base64 characters and the
	// browser proxies about 12.
	DefaultMaxSidBytes = 64
	// DefaultMaxSDPBytes bounds the JSON text of an offer or answer; real
	// ones are 1-4 KB, more with many network interfaces.
	DefaultMaxSDPBytes = 16384
	// DefaultClientRate and DefaultProxyRate are requests per second per
	// source, with bursts of DefaultClientBurst and DefaultProxyBurst. A
	// source is often many peers: a NAT, a CDN's edge, an AMP cache.
	DefaultClientRate  = 5
	DefaultClientBurst = 50
	DefaultProxyRate   = 5
	DefaultProxyBurst  = 50
)

// Fixed bounds on fields that the broker does not keep.
const (
	// maxProxyPollBody bounds a /proxy request: its fields (Sid, Type, NAT,
	// Version, the relay pattern) are all short.
	maxProxyPollBody = 4096
	// maxRelayPatternBytes: a DNS name is at most 253 bytes, plus ^ and $.
	maxRelayPatternBytes = 256
)

// Reasons a request is refused before it is served, the "reason" label of
// snowfall_broker_refused_total.
const (
	refusedRateLimit   = "rate_limit"
	refusedSidSize     = "sid_size"
	refusedBodySize    = "body_size"
	refusedPatternSize = "pattern_size"
	refusedSDPSize     = "sdp_size"
	refusedSDPInvalid  = "sdp_invalid"
)

var refusedReasons = []string{refusedRateLimit, refusedSidSize, refusedBodySize, refusedPatternSize, refusedSDPSize, refusedSDPInvalid}

// refusals counts refused requests and logs each reason at most once per
// refuseLogEvery, with the number refused since the last log line.
type refusals struct {
	counter *prometheus.CounterVec // endpoint, reason
	log     func(endpoint, reason string, n uint64)

	mu      sync.Mutex
	pending map[[2]string]*refusalLog
}

type refusalLog struct {
	n    atomic.Uint64
	last time.Time
}

const refuseLogEvery = time.Minute

func newRefusals(reg *prometheus.Registry, log func(endpoint, reason string, n uint64)) *refusals {
	r := &refusals{
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "snowfall", Subsystem: "broker", Name: "refused_total",
			Help: "Requests refused by a bound or rate limit, by endpoint and reason",
		}, []string{"endpoint", "reason"}),
		log:     log,
		pending: make(map[[2]string]*refusalLog),
	}
	for _, ep := range []string{"client", "proxy", "answer"} {
		for _, reason := range refusedReasons {
			r.counter.WithLabelValues(ep, reason)
		}
	}
	reg.MustRegister(r.counter)
	return r
}

func (r *refusals) add(endpoint, reason string) {
	r.counter.WithLabelValues(endpoint, reason).Inc()
	k := [2]string{endpoint, reason}
	now := time.Now()
	r.mu.Lock()
	p := r.pending[k]
	if p == nil {
		p = &refusalLog{}
		r.pending[k] = p
	}
	p.n.Add(1)
	var n uint64
	if now.Sub(p.last) >= refuseLogEvery {
		p.last = now
		n = p.n.Swap(0)
	}
	r.mu.Unlock()
	if n > 0 {
		r.log(endpoint, reason, n)
	}
}

// tooMany answers a rate-limited request: 429 with Retry-After in whole
// seconds, rounded up (RFC 9110 §10.2.3).
func tooMany(w http.ResponseWriter, retryAfter time.Duration) {
	secs := int64(math.Ceil(retryAfter.Seconds()))
	secs = min(max(secs, 1), 3600)
	h := w.Header()
	h["Retry-After"] = []string{strconv.FormatInt(secs, 10)}
	h["Content-Type"] = hdrTextPlain
	body := "rate limit exceeded; retry after " + strconv.FormatInt(secs, 10) + " s\n"
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write([]byte(body))
}
