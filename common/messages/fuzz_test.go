package messages

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

func FuzzDecodeClientPollRequest(f *testing.F) {
	f.Add([]byte("1.0\n{\"offer\":" + offerJSONQuoted + `,"nat":"unknown","fingerprint":"2B280B23E1107BB62ABFC40DDCC8824814F80A72"}`))
	f.Add([]byte("1.0\n{\"OFFER\":\"o\",\"extra\":1}"))
	f.Add([]byte("1.0\n{\"offer\":\"o\",\"nat\":\"restricted\",\"fingerprint\":\"" + fp2 + "\"}"))
	f.Add([]byte("2.0\n{}"))
	f.Add([]byte(`{"type":"offer","sdp":"v=0"}`))
	f.Add([]byte("1.0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeClientPollRequest(data)
		if err != nil {
			if r != nil {
				t.Fatal("result and error")
			}
			return
		}
		if r.Offer == "" {
			t.Fatal("accepted without offer")
		}
		if _, err := nattype.Parse(r.NAT); err != nil || r.NAT == "" {
			t.Fatalf("accepted NAT %q", r.NAT)
		}
		// Decoded strings are valid UTF-8, so re-encoding is lossless.
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeClientPollRequest(b)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", b, err)
		}
		if *again != *r {
			t.Fatalf("round trip %+v -> %+v", r, again)
		}
	})
}

func FuzzDecodeClientPollResponse(f *testing.F) {
	f.Add([]byte(`{"answer":` + offerJSONQuoted + `}`))
	f.Add([]byte(`{"error":"no snowflake proxies currently available"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeClientPollResponse(data)
		if err != nil {
			return
		}
		if r.Answer == "" && r.Error == "" {
			t.Fatal("empty response accepted")
		}
		b, _ := r.Encode()
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
	})
}

func FuzzDecodeProxyPollRequest(f *testing.F) {
	for _, s := range proxyPollSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPath(t, data)
		r, err := DecodeProxyPollRequest(data)
		if err != nil {
			return
		}
		if r.Sid == "" || r.Clients < 0 {
			t.Fatalf("accepted %+v", r)
		}
		if _, err := nattype.Parse(r.NAT); err != nil || r.NAT == "" {
			t.Fatalf("accepted NAT %q", r.NAT)
		}
		b, _ := r.Encode()
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
		again, err := DecodeProxyPollRequest(b)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", b, err)
		}
		if again.Type != r.Type || again.NAT != r.NAT || again.Clients != r.Clients ||
			(again.AcceptedRelayPattern == nil) != (r.AcceptedRelayPattern == nil) {
			t.Fatalf("round trip %s -> %s", dump(r), dump(again))
		}
	})
}

func FuzzDecodeProxyPollResponse(f *testing.F) {
	f.Add([]byte(`{"Status":"client match","Offer":` + offerJSONQuoted + `,"NAT":"unrestricted","RelayURL":"wss://snowflake.torproject.net/"}`))
	f.Add([]byte(`{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`))
	f.Add([]byte(`{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeProxyPollResponse(data)
		var se StatusError
		if err != nil && !errors.As(err, &se) {
			if r != nil {
				t.Fatal("result and error")
			}
			return
		}
		if r == nil {
			t.Fatal("no result")
		}
		if r.Status != StatusMatch && r.Offer != "" {
			t.Fatalf("offer kept with status %q", r.Status)
		}
		b, _ := r.Encode()
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
		again, err2 := DecodeProxyPollResponse(b)
		// Decoded strings are valid UTF-8, so re-encoding is lossless.
		if (err == nil) != (err2 == nil) || again == nil || *again != *r {
			t.Fatalf("round trip (%+v, %v) -> (%+v, %v)", r, err, again, err2)
		}
	})
}

func FuzzDecodeProxyAnswerRequest(f *testing.F) {
	f.Add([]byte(`{"Version":"1.3","Sid":"jgZ0bKN8rTAZ7E4XmZcLNw","Answer":` + offerJSONQuoted + `}`))
	f.Add([]byte(`{"Version":"1.0","Sid":"k3x9","Answer":"a"}`))
	f.Add([]byte(`{"Version":"2.0"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeProxyAnswerRequest(data)
		if err != nil {
			return
		}
		if r.Sid == "" || r.Answer == "" {
			t.Fatalf("accepted %+v", r)
		}
		b, _ := r.Encode()
		if _, err := DecodeProxyAnswerRequest(b); err != nil {
			t.Fatalf("re-encoded %q: %v", b, err)
		}
	})
}

func FuzzDecodeProxyAnswerResponse(f *testing.F) {
	f.Add([]byte(`{"Status":"success"}`))
	f.Add([]byte(`{"Status":"client gone"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeProxyAnswerResponse(data)
		if err == nil && r.Status != StatusSuccess {
			t.Fatalf("status %q without error", r.Status)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("v=0\r\n<&>\u2028\xff\x00")
	f.Fuzz(func(t *testing.T, s string) {
		checkJSONString(t, s)
	})
}

var sinkReq *ProxyPollRequest

func BenchmarkDecodeProxyPollRequest(b *testing.B) {
	data := []byte(proxyPollSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeProxyPollRequest(data)
		if err != nil {
			b.Fatal(err)
		}
		sinkReq = r
	}
}

// BenchmarkDecodeProxyPollRequestEncodingJSON is the baseline the fast path
// is measured against.
func BenchmarkDecodeProxyPollRequestEncodingJSON(b *testing.B) {
	data := []byte(proxyPollSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		r := new(ProxyPollRequest)
		if err := json.Unmarshal(data, r); err != nil {
			b.Fatal(err)
		}
		sinkReq = r
	}
}

func BenchmarkEncodeProxyPollRequest(b *testing.B) {
	r := &ProxyPollRequest{Sid: "jgZ0bKN8rTAZ7E4XmZcLNw", Version: ProxyVersion, Type: "standalone", NAT: "unknown", AcceptedRelayPattern: ptr("snowflake.torproject.net$")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeProxyPollResponse(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    ProxyPollResponse
	}{
		{"NoMatch", ProxyPollResponse{Status: StatusNoMatch, NextPoll: 20000}},
		{"Match", ProxyPollResponse{Status: StatusMatch, Offer: offerJSON, NAT: "restricted", RelayURL: "wss://snowflake.torproject.net/"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.r.Encode(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"EncodingJSON", func(b *testing.B) {
			type wire struct { // the reference's shape, for comparison
				Status   string
				Offer    string
				NAT      string
				NextPoll int `json:",omitempty"`
				RelayURL string
			}
			w := wire(bc.r)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(&w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeProxyPollResponse(b *testing.B) {
	data, _ := (&ProxyPollResponse{Status: StatusMatch, Offer: offerJSON, NAT: "restricted", RelayURL: "wss://snowflake.torproject.net/"}).Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeProxyPollResponse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncodingJSONShapeEquivalence checks the hand-written encoder against
// json.Marshal of the reference's struct shape, over a spread of values.
func TestEncodingJSONShapeEquivalence(t *testing.T) {
	type wire struct {
		Status   string
		Offer    string
		NAT      string
		NextPoll int `json:",omitempty"`
		RelayURL string
	}
	for _, r := range []ProxyPollResponse{
		{},
		{Status: StatusMatch, Offer: offerJSON, NAT: "unknown", NextPoll: -1, RelayURL: "wss://a/?b=<c>&d"},
		{Status: "\x00", Offer: "\u2028", NAT: "\xff", NextPoll: 1 << 40, RelayURL: "é"},
	} {
		got, _ := r.Encode()
		want, _ := json.Marshal(wire(r))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %s, encoding/json %s", got, want)
		}
	}
}
