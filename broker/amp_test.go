package broker

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/amp"
	"github.com/snowfall-pt/snowfall/common/messages"
)

func decodeArmor(t *testing.T, body string) string {
	t.Helper()
	b, err := io.ReadAll(amp.NewArmorDecoder(strings.NewReader(body)))
	if err != nil {
		t.Fatalf("armor: %v in %q", err, body)
	}
	return string(b)
}

func TestAMP(t *testing.T) {
	cfg := testConfig()
	b, h := newTestBroker(t, cfg)

	// No proxy.
	r := do(h, "GET", "/amp/client/"+amp.EncodePath([]byte(clientPoll(testOffer, "unknown", ""))), "")
	if r.code != 200 || r.hdr.Get("Content-Type") != "text/html" || r.hdr.Get("Cache-Control") != "max-age=15" {
		t.Fatalf("%d %v", r.code, r.hdr)
	}
	if got := decodeArmor(t, r.body); got != `{"error":"no snowflake proxies currently available"}` {
		t.Fatalf("%q", got)
	}
	if !strings.HasPrefix(r.body, "<!doctype html>") && !strings.HasPrefix(strings.ToLower(r.body), "<!doctype html>") {
		t.Errorf("not an AMP page: %.60q", r.body)
	}

	// Undecodable paths and bodies are 200 with an armored error.
	for path, want := range map[string]string{
		"/amp/client/1abc/AAAA": `{"error":"cannot decode URL path"}`,
		"/amp/client/0abc/!!!!": `{"error":"cannot decode URL path"}`,
		"/amp/client/":          `{"error":"cannot decode URL path"}`,
		"/amp/client/0x/" + amp.EncodePath([]byte("1.0\n{}"))[14:]: `{"error":"no supplied offer"}`,
	} {
		r := do(h, "GET", path, "")
		if r.code != 200 {
			t.Errorf("%s: %d", path, r.code)
			continue
		}
		if got := decodeArmor(t, r.body); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}

	// Unknown bridge: 500, which an AMP cache turns into an error page.
	r = do(h, "GET", "/amp/client/"+amp.EncodePath([]byte(clientPoll(testOffer, "unknown", strings.Repeat("CD", 32)))), "")
	if r.code != 500 {
		t.Fatalf("unknown bridge: %d", r.code)
	}

	// A match through AMP.
	pr := startPoll(h, proxyPoll("amp", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	cr := make(chan result, 1)
	go func() {
		cr <- do(h, "GET", "/amp/client/"+amp.EncodePath([]byte(clientPoll(testOffer, "restricted", fp2))), "")
	}()
	p := <-pr
	if !strings.Contains(p.body, `"RelayURL":"`+relay2+`"`) {
		t.Fatalf("proxy: %q", p.body)
	}
	do(h, "POST", "/answer", answerBody("amp", testAnswer))
	c := <-cr
	resp, err := messages.DecodeClientPollResponse([]byte(decodeArmor(t, c.body)))
	if err != nil || resp.Answer != testAnswer {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestAMPLongAnswerOverTCP(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 5 * time.Second
	cfg.MaxSDPBytes = MaxBodySize
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	base := serveLoopback(t, b, nil)
	pr := make(chan string, 1)
	go func() {
		resp, err := http.Post(base+"/proxy", "", strings.NewReader(proxyPoll("long", "unrestricted", 0, pat(testPattern))))
		if err != nil {
			pr <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pr <- string(body)
	}()
	waitWaiting(t, b, 1)
	answer := strings.Replace(testAnswer, "a=candidate:", strings.Repeat("a=x-padding:0123456789abcdef0123456789abcdef\\r\\n", 800)+"a=candidate:", 1)
	cr := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/amp/client/" + amp.EncodePath([]byte(clientPoll(testOffer, "restricted", ""))))
		if err != nil {
			cr <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cr <- string(body)
	}()
	<-pr
	resp, err := http.Post(base+"/answer", "", strings.NewReader(answerBody("long", answer)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, err := messages.DecodeClientPollResponse([]byte(decodeArmor(t, <-cr)))
	if err != nil || got.Answer != answer {
		t.Fatalf("long answer lost: %v", err)
	}
}
