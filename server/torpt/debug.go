package torpt

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime"
	"time"

	"github.com/snowfall-pt/snowfall/server"
)

// checkLoopback refuses a debug address that is not on loopback: the
// counters are for the operator and for tests, not for the Internet.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return errors.New("must be a loopback IP address and port")
	}
	return nil
}

// Counters is what the debug listener serves at / (after a garbage
// collection with ?gc=1).
type Counters struct {
	Goroutines       int    `json:"goroutines"`
	HeapInuse        uint64 `json:"heap_inuse"`
	StackInuse       uint64 `json:"stack_inuse"`
	WebSockets       int    `json:"websockets"`
	SessionsAdmitted int    `json:"sessions_admitted"`
	SessionsRunning  int    `json:"sessions_running"`
	TorConns         int    `json:"tor_conns"`
}

// serveDebug serves Counters as JSON at / and the runtime's profiles at
// /debug/pprof/ on addr (loopback only).
func serveDebug(addr string, servers []*server.Server, fws []*server.Forwarder) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	// The profiles show where memory and goroutines go under load.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var c Counters
		if r.URL.Query().Get("gc") == "1" {
			// Live memory only, for measurements.
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.Goroutines = runtime.NumGoroutine()
		c.HeapInuse = ms.HeapInuse
		c.StackInuse = ms.StackInuse
		for _, s := range servers {
			c.WebSockets += s.ActiveWebSockets()
			a, n := s.Sessions()
			c.SessionsAdmitted += a
			c.SessionsRunning += n
		}
		for _, f := range fws {
			c.TorConns += f.OpenConns()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	return ln, nil
}
