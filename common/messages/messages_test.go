package messages

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
	"github.com/snowfall-pt/snowfall/common/nattype"
)

// offerJSON is a session description as a pion client sends it, already in
// its JSON form (PROTOCOL.md §1.1).
const offerJSON = `{"type":"offer","sdp":"v=0\r\no=- 4358805017720277108 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 B2:CB:6D:98:C1:19:B3:28:5D:5E:84:30:0D:5A:E4:29:2F:67:B4:2D:60:5C:5D:1C:A8:66:8E:7D:3F:AA:D9:2E\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=sctp-port:5000\r\na=ice-ufrag:vDzgIAyYwKEtbhTP\r\na=ice-pwd:hBZqlkeTqqftXRxsDPnjBQWmmBbYnNRl\r\na=candidate:3405564593 1 udp 1694498815 203.0.113.7 40813 typ srflx raddr 0.0.0.0 rport 40813\r\na=end-of-candidates\r\n"}`

// The escaped form of offerJSON inside another JSON string, by hand.
const offerJSONQuoted = `"{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 4358805017720277108 2 IN IP4 0.0.0.0\\r\\ns=-\\r\\nt=0 0\\r\\na=fingerprint:sha-256 B2:CB:6D:98:C1:19:B3:28:5D:5E:84:30:0D:5A:E4:29:2F:67:B4:2D:60:5C:5D:1C:A8:66:8E:7D:3F:AA:D9:2E\\r\\na=group:BUNDLE 0\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\\r\\nc=IN IP4 0.0.0.0\\r\\na=setup:actpass\\r\\na=mid:0\\r\\na=sendrecv\\r\\na=sctp-port:5000\\r\\na=ice-ufrag:vDzgIAyYwKEtbhTP\\r\\na=ice-pwd:hBZqlkeTqqftXRxsDPnjBQWmmBbYnNRl\\r\\na=candidate:3405564593 1 udp 1694498815 203.0.113.7 40813 typ srflx raddr 0.0.0.0 rport 40813\\r\\na=end-of-candidates\\r\\n\"}"`

const fp2 = "8838024498816A039FCBBAB14E6F40A0843051FA"

func ptr(s string) *string { return &s }

func TestClientPollRequestEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  ClientPollRequest
		want string
	}{
		{
			"full",
			ClientPollRequest{Offer: offerJSON, NAT: nattype.Restricted, Fingerprint: fp2},
			"1.0\n{\"offer\":" + offerJSONQuoted + `,"nat":"restricted","fingerprint":"` + fp2 + `"}`,
		},
		{
			"defaults",
			ClientPollRequest{Offer: "x"},
			"1.0\n" + `{"offer":"x","nat":"unknown","fingerprint":"2B280B23E1107BB62ABFC40DDCC8824814F80A72"}`,
		},
		{
			"html escaping like encoding/json",
			ClientPollRequest{Offer: "<&>\u2028", NAT: "unrestricted", Fingerprint: fp2},
			"1.0\n" + `{"offer":"\u003c\u0026\u003e\u2028","nat":"unrestricted","fingerprint":"` + fp2 + `"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.req.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			version, body, _ := strings.Cut(string(got), "\n")
			if version != ClientVersion || !json.Valid([]byte(body)) {
				t.Fatalf("not version + valid JSON: %q", got)
			}
			// The reference marshals the struct with encoding/json.
			filled := tc.req
			if filled.NAT == "" {
				filled.NAT = nattype.Unknown
			}
			if filled.Fingerprint == "" {
				filled.Fingerprint = bridgefingerprint.Default
			}
			ref, _ := json.Marshal(&filled)
			if body != string(ref) {
				t.Fatalf("differs from encoding/json:\n got %s\nwant %s", body, ref)
			}
		})
	}
}

func TestDecodeClientPollRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    *ClientPollRequest
		wantErr error
		errText string
	}{
		{
			name: "reference layout",
			in:   "1.0\n{\"offer\":" + offerJSONQuoted + `,"nat":"unrestricted","fingerprint":"` + fp2 + `"}`,
			want: &ClientPollRequest{Offer: offerJSON, NAT: nattype.Unrestricted, Fingerprint: fp2},
		},
		{
			name: "missing nat and fingerprint default",
			in:   "1.0\n{\"offer\":\"o\"}",
			want: &ClientPollRequest{Offer: "o", NAT: nattype.Unknown, Fingerprint: bridgefingerprint.Default},
		},
		{
			name: "keys are case-insensitive and unknown keys ignored",
			in:   "1.0\n{\"OFFER\":\"o\",\"Nat\":\"restricted\",\"FingerPrint\":\"" + strings.ToLower(fp2) + "\",\"extra\":[1,{\"a\":null}]}",
			want: &ClientPollRequest{Offer: "o", NAT: nattype.Restricted, Fingerprint: strings.ToLower(fp2)},
		},
		{
			name: "ed25519-length fingerprint",
			in:   "1.0\n{\"offer\":\"o\",\"fingerprint\":\"" + strings.Repeat("ab", 32) + "\"}",
			want: &ClientPollRequest{Offer: "o", NAT: nattype.Unknown, Fingerprint: strings.Repeat("ab", 32)},
		},
		{
			name: "null values are absent",
			in:   "1.0\n{\"offer\":\"o\",\"nat\":null,\"fingerprint\":null}",
			want: &ClientPollRequest{Offer: "o", NAT: nattype.Unknown, Fingerprint: bridgefingerprint.Default},
		},
		{name: "no LF", in: `{"offer":"o"}`, wantErr: ErrUnsupportedVersion, errText: "unsupported message version"},
		{name: "empty", in: "", wantErr: ErrUnsupportedVersion},
		{name: "version 2.0", in: "2.0\n{\"offer\":\"o\"}", wantErr: ErrUnsupportedVersion},
		{name: "version 1.1", in: "1.1\n{\"offer\":\"o\"}", wantErr: ErrUnsupportedVersion},
		{name: "CRLF", in: "1.0\r\n{\"offer\":\"o\"}", wantErr: ErrUnsupportedVersion},
		{name: "no offer", in: "1.0\n{\"nat\":\"unknown\"}", wantErr: ErrNoOffer, errText: "no supplied offer"},
		{name: "empty offer", in: "1.0\n{\"offer\":\"\"}", wantErr: ErrNoOffer},
		{name: "JSON null body", in: "1.0\nnull", wantErr: ErrNoOffer},
		{name: "bad fingerprint", in: "1.0\n{\"offer\":\"o\",\"fingerprint\":\"xyz\"}", wantErr: ErrBadFingerprint, errText: "cannot decode fingerprint"},
		{name: "short fingerprint", in: "1.0\n{\"offer\":\"o\",\"fingerprint\":\"2B28\"}", wantErr: ErrBadFingerprint},
		{name: "bad nat", in: "1.0\n{\"offer\":\"o\",\"nat\":\"symmetric\"}", wantErr: ErrInvalidNAT, errText: "invalid NAT type"},
		{name: "fingerprint checked before nat", in: "1.0\n{\"offer\":\"o\",\"nat\":\"x\",\"fingerprint\":\"x\"}", wantErr: ErrBadFingerprint},
		{
			name:    "Go JSON type error text",
			in:      "1.0\n{\"offer\":1}",
			errText: "json: cannot unmarshal number into Go struct field ClientPollRequest.offer of type string",
		},
		{name: "Go JSON syntax error", in: "1.0\n{\"offer\":", errText: "unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeClientPollRequest([]byte(tc.in))
			if tc.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				if *got != *tc.want {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil || got != nil {
				t.Fatalf("got (%v, %v), want an error", got, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if tc.errText != "" && err.Error() != tc.errText {
				t.Fatalf("error text %q, want %q", err, tc.errText)
			}
		})
	}
}

func TestInvalidNATMatchesNattype(t *testing.T) {
	_, err := DecodeClientPollRequest([]byte("1.0\n{\"offer\":\"o\",\"nat\":\"bogus\"}"))
	if !errors.Is(err, ErrInvalidNAT) || !errors.Is(err, nattype.ErrInvalid) {
		t.Fatalf("%v is not both ErrInvalidNAT and nattype.ErrInvalid", err)
	}
}

func TestClientPollRoundTrip(t *testing.T) {
	for _, req := range []ClientPollRequest{
		{Offer: offerJSON, NAT: nattype.Unknown, Fingerprint: bridgefingerprint.Default},
		{Offer: offerJSON, NAT: nattype.Restricted, Fingerprint: fp2},
		{Offer: "é\u2029\x01\"\\", NAT: nattype.Unrestricted, Fingerprint: fp2},
	} {
		b, err := req.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeClientPollRequest(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if *got != req {
			t.Fatalf("round trip %+v -> %+v", req, got)
		}
	}
}

func TestClientPollResponse(t *testing.T) {
	for _, tc := range []struct {
		resp ClientPollResponse
		want string
	}{
		{ClientPollResponse{Answer: offerJSON}, `{"answer":` + offerJSONQuoted + `}`},
		{ClientPollResponse{Error: StrNoProxies}, `{"error":"no snowflake proxies currently available"}`},
		{ClientPollResponse{Error: StrTimedOut}, `{"error":"timed out waiting for answer!"}`},
		{ClientPollResponse{Answer: "a", Error: "e"}, `{"answer":"a","error":"e"}`},
		{ClientPollResponse{}, `{}`},
	} {
		got, err := tc.resp.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Fatalf("got %s, want %s", got, tc.want)
		}
		ref, _ := json.Marshal(&tc.resp)
		if string(ref) != string(got) {
			t.Fatalf("differs from encoding/json: %s vs %s", got, ref)
		}
		dec, err := DecodeClientPollResponse(got)
		if tc.resp == (ClientPollResponse{}) {
			if !errors.Is(err, ErrEmptyResponse) {
				t.Fatalf("empty response decoded to (%v, %v)", dec, err)
			}
			continue
		}
		if err != nil || *dec != tc.resp {
			t.Fatalf("round trip: (%+v, %v)", dec, err)
		}
	}
	// Leniency of the client decoding the broker's reply.
	dec, err := DecodeClientPollResponse([]byte(`{"Error":"x","other":1}`))
	if err != nil || dec.Error != "x" {
		t.Fatalf("got (%+v, %v)", dec, err)
	}
	for _, bad := range []string{``, `{"answer":""}`, `{"answer":null}`, `[]`, `{"answer":1}`, `{`} {
		if dec, err := DecodeClientPollResponse([]byte(bad)); err == nil {
			t.Errorf("%q decoded to %+v", bad, dec)
		}
	}
}

func TestProxyPollRequestEncode(t *testing.T) {
	for _, tc := range []struct {
		req  ProxyPollRequest
		want string
	}{
		{ // PROTOCOL.md §3.5
			ProxyPollRequest{Sid: "<session id>", Type: "standalone", NAT: "unknown", AcceptedRelayPattern: ptr("snowflake.torproject.net$")},
			`{"Sid":"\u003csession id\u003e","Version":"1.3","Type":"standalone","NAT":"unknown","Clients":0,"AcceptedRelayPattern":"snowflake.torproject.net$"}`,
		},
		{
			ProxyPollRequest{Sid: "jgZ0bKN8rTAZ7E4XmZcLNw", Version: "1.3", Type: "webext", NAT: "restricted", Clients: 8, AcceptedRelayPattern: ptr("")},
			`{"Sid":"jgZ0bKN8rTAZ7E4XmZcLNw","Version":"1.3","Type":"webext","NAT":"restricted","Clients":8,"AcceptedRelayPattern":""}`,
		},
		{
			ProxyPollRequest{Sid: "s", Version: "1.0", Type: "badge", Clients: -8},
			`{"Sid":"s","Version":"1.0","Type":"badge","NAT":"unknown","Clients":-8,"AcceptedRelayPattern":null}`,
		},
	} {
		got, err := tc.req.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Fatalf("got  %s\nwant %s", got, tc.want)
		}
		filled := tc.req
		if filled.Version == "" {
			filled.Version = ProxyVersion
		}
		if filled.NAT == "" {
			filled.NAT = nattype.Unknown
		}
		if ref, _ := json.Marshal(&filled); string(ref) != string(got) {
			t.Fatalf("differs from encoding/json: %s vs %s", got, ref)
		}
		if string(tc.req.AppendJSON([]byte("x"))) != "x"+tc.want {
			t.Fatal("AppendJSON does not append")
		}
	}
}

func TestDecodeProxyPollRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    *ProxyPollRequest
		wantErr error
	}{
		{
			name: "PROTOCOL.md example",
			in:   `{"Sid":"<session id>","Version":"1.3","Type":"standalone","NAT":"unknown","Clients":0,"AcceptedRelayPattern":"snowflake.torproject.net$"}`,
			want: &ProxyPollRequest{Sid: "<session id>", Version: "1.3", Type: "standalone", NAT: "unknown", AcceptedRelayPattern: ptr("snowflake.torproject.net$")},
		},
		{
			name: "absent pattern is nil",
			in:   `{"Sid":"s","Version":"1.2","Type":"webext","NAT":"restricted","Clients":16}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1.2", Type: "webext", NAT: "restricted", Clients: 16},
		},
		{
			name: "null pattern is nil",
			in:   `{"Sid":"s","Version":"1.3","AcceptedRelayPattern":null}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1.3", Type: "unknown", NAT: "unknown"},
		},
		{
			name: "empty pattern is a pointer to empty",
			in:   `{"Sid":"s","Version":"1.3","AcceptedRelayPattern":""}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1.3", Type: "unknown", NAT: "unknown", AcceptedRelayPattern: ptr("")},
		},
		{
			name: "later null wins over a pattern",
			in:   `{"Sid":"s","Version":"1","AcceptedRelayPattern":"x$","AcceptedRelayPattern":null}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1", Type: "unknown", NAT: "unknown"},
		},
		{
			name: "unknown type normalised",
			in:   `{"Sid":"s","Version":"1.3","Type":"my-embedded-proxy","NAT":"unrestricted"}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1.3", Type: "unknown", NAT: "unrestricted"},
		},
		{
			name: "bloco is known",
			in:   `{"Sid":"s","Version":"1.3","Type":"bloco"}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1.3", Type: "bloco", NAT: "unknown"},
		},
		{
			name: "case-insensitive keys, unknown keys, whitespace",
			in:   " {\n\t\"sid\" : \"s\", \"VERSION\":\"1.3\",\"type\":\"iptproxy\",\"nat\":\"restricted\",\"clients\":24,\"acceptedRelayPattern\":\"^x$\",\"future\":{\"a\":[1,2]} }\r\n",
			want: &ProxyPollRequest{Sid: "s", Version: "1.3", Type: "iptproxy", NAT: "restricted", Clients: 24, AcceptedRelayPattern: ptr("^x$")},
		},
		{
			name: "escapes in strings",
			in:   `{"Sid":"a\u0041\"","Version":"1.3","AcceptedRelayPattern":"\u00e9.example$"}`,
			want: &ProxyPollRequest{Sid: `aA"`, Version: "1.3", Type: "unknown", NAT: "unknown", AcceptedRelayPattern: ptr("é.example$")},
		},
		{
			name: "negative clients clamped",
			in:   `{"Sid":"s","Version":"1.3","Clients":-5}`,
			want: &ProxyPollRequest{Sid: "s", Version: "1.3", Type: "unknown", NAT: "unknown"},
		},
		{name: "version 2.0", in: `{"Sid":"s","Version":"2.0"}`, wantErr: ErrUnsupportedVersion},
		{name: "version 11.0", in: `{"Sid":"s","Version":"11.0"}`, wantErr: ErrUnsupportedVersion},
		{name: "missing version", in: `{"Sid":"s"}`, wantErr: ErrUnsupportedVersion},
		{name: "missing sid", in: `{"Version":"1.3"}`, wantErr: ErrNoSid},
		{name: "null sid", in: `{"Sid":null,"Version":"1.3"}`, wantErr: ErrNoSid},
		{name: "invalid nat", in: `{"Sid":"s","Version":"1.3","NAT":"open"}`, wantErr: ErrInvalidNAT},
		{name: "clients not integer", in: `{"Sid":"s","Version":"1.3","Clients":1.5}`},
		{name: "clients string", in: `{"Sid":"s","Version":"1.3","Clients":"8"}`},
		{name: "clients overflow", in: `{"Sid":"s","Version":"1.3","Clients":123456789012345678901234567890}`},
		{name: "sid number", in: `{"Sid":1,"Version":"1.3"}`},
		{name: "truncated", in: `{"Sid":"s","Version":"1.3"`},
		{name: "trailing garbage", in: `{"Sid":"s","Version":"1.3"}x`},
		{name: "two objects", in: `{"Sid":"s","Version":"1.3"}{}`},
		{name: "empty", in: ``},
		{name: "array", in: `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeProxyPollRequest([]byte(tc.in))
			if tc.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %s, want %s", dump(got), dump(tc.want))
				}
				return
			}
			if err == nil {
				t.Fatalf("got %s, want an error", dump(got))
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == ErrUnsupportedVersion && !strings.Contains(err.Error(), "version") {
				t.Fatalf("error %q does not mention the version", err)
			}
		})
	}
}

func dump(r *ProxyPollRequest) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestProxyPollRequestRoundTrip(t *testing.T) {
	for _, req := range []ProxyPollRequest{
		{Sid: "jgZ0bKN8rTAZ7E4XmZcLNw", Version: ProxyVersion, Type: "standalone", NAT: "unknown", Clients: 0, AcceptedRelayPattern: ptr("snowflake.torproject.net$")},
		{Sid: "x", Version: "1.0", Type: "webext", NAT: "unrestricted", Clients: 1 << 40},
		{Sid: "<\u2028>", Version: ProxyVersion, Type: "badge", NAT: "restricted", AcceptedRelayPattern: ptr("")},
	} {
		b, _ := req.Encode()
		got, err := DecodeProxyPollRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(*got, req) {
			t.Fatalf("round trip %s -> %s", dump(&req), dump(got))
		}
	}
}

// TestProxyPollFastPathMatchesJSON checks that the reflection-free decoder
// agrees with encoding/json whenever it accepts an input.
func TestProxyPollFastPathMatchesJSON(t *testing.T) {
	for _, in := range proxyPollSeeds {
		checkFastPath(t, []byte(in))
	}
	// The common poll must take the fast path.
	var r ProxyPollRequest
	if !decodeProxyPollRequestFast([]byte(proxyPollSeeds[0]), &r) {
		t.Fatal("the standard poll does not take the fast path")
	}
}

func checkFastPath(t *testing.T, data []byte) {
	t.Helper()
	var fast, slow ProxyPollRequest
	if !decodeProxyPollRequestFast(data, &fast) {
		return
	}
	if err := json.Unmarshal(data, &slow); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json says %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %s, encoding/json %s", data, dump(&fast), dump(&slow))
	}
}

var proxyPollSeeds = []string{
	`{"Sid":"jgZ0bKN8rTAZ7E4XmZcLNw","Version":"1.3","Type":"standalone","NAT":"unknown","Clients":0,"AcceptedRelayPattern":"snowflake.torproject.net$"}`,
	`{"Sid":"s","Version":"1.2","Type":"webext","NAT":"restricted","Clients":16}`,
	`{"Sid":"s","Version":"1.3","AcceptedRelayPattern":null}`,
	`{"Sid":"s","Version":"1.3","AcceptedRelayPattern":"","Clients":-0}`,
	`{"Sid":"s","Version":"1","AcceptedRelayPattern":"x$","AcceptedRelayPattern":null}`,
	` { "Sid" : "s" , "Version" : "1.3" , "Clients" : 8 } `,
	`{"sid":"s","version":"1.3"}`,
	`{"Sid":"s","Version":"1.3","Clients":012}`,
	`{"Sid":"s","Version":"1.3","Clients":1e3}`,
	`{"Sid":"s","Version":"1.3","Clients":null,"NAT":null}`,
	`{"Sid":"s","Version":"2.0"}`,
	`{"Sid":"","Version":"1.3"}`,
	`{}`,
	`{"Sid":"s",}`,
	`{"Sid":"s\u0000","Version":"1.3"}`,
	`{"Sid":"\xff","Version":"1.3"}`,
}

func TestProxyPollResponseEncode(t *testing.T) {
	for _, tc := range []struct {
		resp ProxyPollResponse
		want string
	}{
		{ // PROTOCOL.md §3.5, 2.5.1 shapes
			ProxyPollResponse{Status: StatusMatch, Offer: offerJSON, NAT: "unrestricted", RelayURL: "wss://snowflake.torproject.net/"},
			`{"Status":"client match","Offer":` + offerJSONQuoted + `,"NAT":"unrestricted","RelayURL":"wss://snowflake.torproject.net/"}`,
		},
		{
			ProxyPollResponse{Status: StatusNoMatch},
			`{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`,
		},
		{ // fork shapes, NextPoll between NAT and RelayURL
			ProxyPollResponse{Status: StatusNoMatch, NextPoll: 20000},
			`{"Status":"no match","Offer":"","NAT":"","NextPoll":20000,"RelayURL":""}`,
		},
		{
			ProxyPollResponse{Status: StatusIncorrectRelayPattern, NextPoll: 3600000},
			`{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`,
		},
		{
			ProxyPollResponse{Status: StatusMatch, Offer: "o", NAT: "restricted", NextPoll: 5000, RelayURL: "wss://02.snowflake.torproject.net"},
			`{"Status":"client match","Offer":"o","NAT":"restricted","NextPoll":5000,"RelayURL":"wss://02.snowflake.torproject.net"}`,
		},
	} {
		got, err := tc.resp.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Fatalf("got  %s\nwant %s", got, tc.want)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
	}
}

func TestDecodeProxyPollResponse(t *testing.T) {
	r, err := DecodeProxyPollResponse([]byte(`{"Status":"client match","Offer":` + offerJSONQuoted + `,"NAT":"restricted","RelayURL":"wss://r/"}`))
	if err != nil || *r != (ProxyPollResponse{Status: StatusMatch, Offer: offerJSON, NAT: "restricted", RelayURL: "wss://r/"}) {
		t.Fatalf("match: (%+v, %v)", r, err)
	}
	r, err = DecodeProxyPollResponse([]byte(`{"Status":"no match","Offer":"stale","NAT":"","NextPoll":20000,"RelayURL":""}`))
	if err != nil || *r != (ProxyPollResponse{Status: StatusNoMatch, NAT: "unknown", NextPoll: 20000}) {
		t.Fatalf("no match: (%+v, %v)", r, err)
	}
	// webext-era brokers send only Status.
	r, err = DecodeProxyPollResponse([]byte(`{"Status":"no match"}`))
	if err != nil || r.Status != StatusNoMatch || r.NAT != nattype.Unknown {
		t.Fatalf("short no match: (%+v, %v)", r, err)
	}
	r, err = DecodeProxyPollResponse([]byte(`{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`))
	var se StatusError
	if !errors.As(err, &se) || err.Error() != StatusIncorrectRelayPattern || r == nil || r.NextPoll != 3600000 {
		t.Fatalf("incorrect relay pattern: (%+v, %v)", r, err)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"Status":"","Offer":"o"}`, ErrNoStatus},
		{`{}`, ErrNoStatus},
		{`{"Status":"client match","Offer":""}`, ErrNoOffer},
		{`{"Status":"client match","Offer":1}`, nil},
		{`nope`, nil},
	} {
		r, err := DecodeProxyPollResponse([]byte(tc.in))
		if err == nil || r != nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: (%+v, %v), want %v", tc.in, r, err, tc.want)
		}
	}
	// Round trip through Encode.
	for _, want := range []ProxyPollResponse{
		{Status: StatusMatch, Offer: offerJSON, NAT: "unknown", NextPoll: 1, RelayURL: "wss://x/"},
		{Status: StatusNoMatch, NAT: "unknown"},
	} {
		b, _ := want.Encode()
		got, err := DecodeProxyPollResponse(b)
		if err != nil || *got != want {
			t.Fatalf("round trip %+v -> (%+v, %v)", want, got, err)
		}
	}
}

func TestProxyAnswer(t *testing.T) {
	req := ProxyAnswerRequest{Sid: "jgZ0bKN8rTAZ7E4XmZcLNw", Answer: offerJSON}
	b, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"1.3","Sid":"jgZ0bKN8rTAZ7E4XmZcLNw","Answer":` + offerJSONQuoted + `}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// The browser proxy answers with version 1.0; the broker takes it.
	webext := ProxyAnswerRequest{Version: "1.0", Sid: "k3x9", Answer: "a"}
	b, _ = webext.Encode()
	if string(b) != `{"Version":"1.0","Sid":"k3x9","Answer":"a"}` {
		t.Fatalf("got %s", b)
	}
	got, err := DecodeProxyAnswerRequest(b)
	if err != nil || *got != webext {
		t.Fatalf("decode: (%+v, %v)", got, err)
	}
	got, err = DecodeProxyAnswerRequest([]byte(`{"version":"1.3","SID":"s","answer":"a","x":true}`))
	if err != nil || *got != (ProxyAnswerRequest{Version: "1.3", Sid: "s", Answer: "a"}) {
		t.Fatalf("lenient decode: (%+v, %v)", got, err)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"Version":"2.0","Sid":"s","Answer":"a"}`, ErrUnsupportedVersion},
		{`{"Sid":"s","Answer":"a"}`, ErrUnsupportedVersion},
		{`{"Version":"1.3","Answer":"a"}`, ErrNoSid},
		{`{"Version":"1.3","Sid":"s"}`, ErrNoAnswer},
		{`{"Version":"1.3","Sid":"s","Answer":{}}`, nil},
		{``, nil},
	} {
		if got, err := DecodeProxyAnswerRequest([]byte(tc.in)); err == nil || got != nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: (%+v, %v), want %v", tc.in, got, err, tc.want)
		}
	}

	for _, status := range []string{StatusSuccess, StatusClientGone} {
		resp := ProxyAnswerResponse{Status: status}
		b, _ := resp.Encode()
		if string(b) != `{"Status":"`+status+`"}` {
			t.Fatalf("got %s", b)
		}
		got, err := DecodeProxyAnswerResponse(b)
		if got == nil || got.Status != status {
			t.Fatalf("decode %s: (%+v, %v)", b, got, err)
		}
		if (status == StatusSuccess) != (err == nil) {
			t.Fatalf("%s: error %v", status, err)
		}
		if err != nil && err.Error() != status {
			t.Fatalf("error text %q, want the status", err)
		}
	}
	if _, err := DecodeProxyAnswerResponse([]byte(`{}`)); !errors.Is(err, ErrNoStatus) {
		t.Fatalf("empty status: %v", err)
	}
	if _, err := DecodeProxyAnswerResponse([]byte(`{"Status":`)); err == nil {
		t.Fatal("truncated reply accepted")
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain", offerJSON, "<script>&amp;</script>", "\x00\x01\x07\b\t\n\v\f\r\x1b\x1f \x7f",
		"\"\\/", "é日本\U0001F600", "\u2028\u2029\u202a", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	}
	for b := 0; b < 256; b++ {
		cases = append(cases, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for _, s := range cases {
		checkJSONString(t, s)
	}
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := AppendJSONString(nil, s)
	if string(got) != string(want) {
		t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
	}
}
