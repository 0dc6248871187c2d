package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nopWriter is a minimal in-memory ResponseWriter, so that benchmarks
// measure the broker rather than httptest's recorder.
type nopWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }
func (w *nopWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// bodyReader is a reusable request body.
type bodyReader struct{ strings.Reader }

func (*bodyReader) Close() error { return nil }

func benchRequest(path, body string) (*http.Request, *bodyReader) {
	br := &bodyReader{}
	br.Reset(body)
	req := httptest.NewRequest("POST", path, nil)
	req.Body = br
	req.RemoteAddr = "192.0.2.7:4000"
	return req, br
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start, which
// unlike ns/op leaves out time spent waiting for timers.
func reportCPU(b *testing.B, start time.Duration, ops int) {
	b.ReportMetric(float64(cpuTime()-start)/float64(ops), "cpu-ns/op")
}

// BenchmarkProxyPoll measures proxy polls that find no client, with a hold
// time of one millisecond instead of ten seconds. Polls run in parallel so
// that the broker stays busy while they are held, as in production;
// cpu-ns/op is the process CPU time per poll.
func BenchmarkProxyPoll(b *testing.B) {
	cfg := testConfig()
	cfg.ProxyTimeout = time.Millisecond
	br, _ := newTestBroker(b, cfg)
	h := br.Handler()
	var id atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		body := proxyPoll(fmt.Sprintf("%022d", id.Add(1)), "unrestricted", 0, pat(testPattern))
		req, rd := benchRequest("/proxy", body)
		w := &nopWriter{h: make(http.Header)}
		for pb.Next() {
			rd.Reset(body)
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.code != 200 {
				b.Error(w.code)
				return
			}
		}
	})
	reportCPU(b, start, b.N)
}

// BenchmarkMatch measures rendezvous: proxies poll continuously (256 of
// them), and each operation is a client poll that is matched with a
// waiting proxy, whose answer it receives. The time and allocations of the
// proxies' polls and answers are included.
func BenchmarkMatch(b *testing.B) {
	const proxies = 256
	cfg := testConfig()
	cfg.ProxyTimeout = time.Minute
	cfg.ClientTimeout = time.Minute
	br, _ := newTestBroker(b, cfg)
	h := br.Handler()
	offer := benchOffer()
	cBody := clientPoll(offer, "restricted", "")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < proxies; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sid := fmt.Sprintf("%022d", i)
			pBody := proxyPoll(sid, "unrestricted", 0, pat(testPattern))
			aBody := answerBody(sid, testAnswer)
			preq, prd := benchRequest("/proxy", pBody)
			areq, ard := benchRequest("/answer", aBody)
			pw := &nopWriter{h: make(http.Header)}
			aw := &nopWriter{h: make(http.Header)}
			for {
				select {
				case <-stop:
					return
				default:
				}
				prd.Reset(pBody)
				clear(pw.h)
				pw.n = 0
				h.ServeHTTP(pw, preq)
				if pw.n < 100 { // "no match" is shorter than any offer
					continue
				}
				ard.Reset(aBody)
				clear(aw.h)
				h.ServeHTTP(aw, areq)
			}
		}(i)
	}
	waitWaiting(b, br, proxies)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		creq, crd := benchRequest("/client", cBody)
		cw := &nopWriter{h: make(http.Header)}
		for pb.Next() {
			for {
				crd.Reset(cBody)
				clear(cw.h)
				cw.n = 0
				h.ServeHTTP(cw, creq)
				if cw.n > 60 { // an answer, not "no proxies"
					break
				}
				runtime.Gosched()
			}
		}
	})
	reportCPU(b, start, b.N)
	b.StopTimer()
	close(stop)
	br.Close()
	wg.Wait()
}

func memInUse() uint64 {
	heap, stack := memInUse2()
	return heap + stack
}

// memInUse2 returns the heap and stack memory in use after a full
// collection (which also shrinks idle goroutine stacks).
func memInUse2() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// BenchmarkHold100kProxies holds 100,000 proxy polls at once through the
// broker's HTTP handler, each in its own goroutine with an in-memory
// request, and reports the memory per held poll (heap and stacks, the
// request included).
func BenchmarkHold100kProxies(b *testing.B) {
	const n = 100000
	for b.Loop() {
		cfg := testConfig()
		cfg.ProxyTimeout = time.Hour
		br, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		h := br.Handler()
		bodies := make([]string, n)
		for i := range bodies {
			bodies[i] = proxyPoll(fmt.Sprintf("%022d", i), "unrestricted", 0, pat(testPattern))
		}
		heap0, stack0 := memInUse2()
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(body string) {
				defer wg.Done()
				req, _ := benchRequest("/proxy", body)
				h.ServeHTTP(&nopWriter{h: make(http.Header)}, req)
			}(bodies[i])
		}
		for {
			if u, _ := br.Waiting(); u == n {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		heap1, stack1 := memInUse2()
		b.ReportMetric(float64(heap1+stack1-heap0-stack0)/n, "B/held-proxy")
		b.ReportMetric(float64(stack1-stack0)/n, "stack-B/held-proxy")
		br.Close()
		wg.Wait()
	}
}

// BenchmarkHoldTCP holds 5,000 proxy polls over loopback TCP connections
// and reports the memory per held poll, for parked polls (Serve) and for
// polls held in their handler (a plain http.Server). The raw client
// connections are counted too; "B/conn-pair" is the cost of an idle client
// and server connection pair, to subtract.
func BenchmarkHoldTCP(b *testing.B) {
	const n = 5000
	b.Run("conn-pair", func(b *testing.B) {
		for b.Loop() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			accepted := make(chan net.Conn, n)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			before := memInUse()
			clients := dialN(b, ln.Addr().String(), n, "")
			server := make([]net.Conn, 0, n)
			for len(server) < n {
				server = append(server, <-accepted)
			}
			after := memInUse()
			b.ReportMetric(float64(after-before)/n, "B/conn-pair")
			closeAll(clients)
			closeAll(server)
			ln.Close()
		}
	})
	for _, parked := range []bool{true, false} {
		name := "parked"
		if !parked {
			name = "in-handler"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				holdTCP(b, n, parked)
			}
		})
	}
}

func holdTCP(b *testing.B, n int, parked bool) {
	cfg := testConfig()
	cfg.ProxyTimeout = time.Hour
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if parked {
			br.Serve(ctx, ln, nil)
			return
		}
		srv := br.HTTPServer()
		context.AfterFunc(ctx, func() { srv.Close() })
		srv.Serve(ln)
	}()
	before := memInUse()
	var reqs strings.Builder
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		reqs.Reset()
		body := proxyPoll(fmt.Sprintf("%022d", i), "unrestricted", 0, pat(testPattern))
		fmt.Fprintf(&reqs, "POST /proxy HTTP/1.1\r\nHost: broker\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		conns = append(conns, dialN(b, ln.Addr().String(), 1, reqs.String())...)
	}
	for {
		if u, _ := br.Waiting(); u == n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(n), "B/held-proxy")
	br.Close()
	// Every connection gets its "no match".
	for _, c := range conns[:10] {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	closeAll(conns)
	cancel()
	<-done
}

func dialN(b *testing.B, addr string, n int, send string) []net.Conn {
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if send != "" {
			if _, err := io.WriteString(c, send); err != nil {
				b.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
