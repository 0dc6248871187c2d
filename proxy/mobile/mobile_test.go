package mobile

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) Log(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }
func (l *lines) all() string  { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.l, "\n") }

func TestStartStop(t *testing.T) {
	polls := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/proxy":
			b, _ := io.ReadAll(r.Body)
			polls <- string(b)
			io.WriteString(w, `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`)
		default:
			http.Error(w, "no probe here", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	var log lines
	p, err := Start(&Settings{BrokerURL: srv.URL + "/", NATProbeURL: srv.URL + "/probe", STUNURLs: " , ", Capacity: 1}, &log)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-polls:
		if !strings.Contains(body, `"Type":"iptproxy"`) {
			t.Errorf("poll %s", body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no poll")
	}
	p.Stop()
	if p.NATType() != "unknown" || p.Clients() != 0 || p.BytesRelayed() != 0 {
		t.Errorf("state after stop: %s %d %d", p.NATType(), p.Clients(), p.BytesRelayed())
	}
	out := log.all()
	if !strings.Contains(out, "Proxy starting") || !strings.Contains(out, "NAT probe failed") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, "127.0.0.1") {
		t.Errorf("address not scrubbed:\n%s", out)
	}
}
