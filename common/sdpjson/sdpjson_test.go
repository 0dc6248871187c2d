package sdpjson

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/pion/webrtc/v4"
)

const sdpText = "v=0\r\no=- 4358805017720277108 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=candidate:3405564593 1 udp 1694498815 203.0.113.7 40813 typ srflx raddr 0.0.0.0 rport 40813\r\na=end-of-candidates\r\n"

const sdpEscaped = `v=0\r\no=- 4358805017720277108 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=candidate:3405564593 1 udp 1694498815 203.0.113.7 40813 typ srflx raddr 0.0.0.0 rport 40813\r\na=end-of-candidates\r\n`

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		typ  webrtc.SDPType
		sdp  string
		want string
	}{
		{webrtc.SDPTypeOffer, sdpText, `{"type":"offer","sdp":"` + sdpEscaped + `"}`},
		{webrtc.SDPTypeAnswer, "v=0\r\n", `{"type":"answer","sdp":"v=0\r\n"}`},
		{webrtc.SDPTypePranswer, "", `{"type":"pranswer","sdp":""}`},
		{webrtc.SDPTypeRollback, "<&>", `{"type":"rollback","sdp":"\u003c\u0026\u003e"}`},
	} {
		got, err := Encode(&webrtc.SessionDescription{Type: tc.typ, SDP: tc.sdp})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Fatalf("got  %s\nwant %s", got, tc.want)
		}
		// pion's own JSON form is the same text: peers that marshal
		// webrtc.SessionDescription directly interoperate.
		pion, _ := json.Marshal(webrtc.SessionDescription{Type: tc.typ, SDP: tc.sdp})
		if string(pion) != got {
			t.Fatalf("pion marshals %s, we %s", pion, got)
		}
		back, err := Decode(got)
		if err != nil || back.Type != tc.typ || back.SDP != tc.sdp {
			t.Fatalf("round trip: (%+v, %v)", back, err)
		}
	}
	if _, err := Encode(&webrtc.SessionDescription{SDP: "v=0"}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Encode(nil); err == nil {
		t.Fatal("nil accepted")
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		typ     webrtc.SDPType
		sdp     string
		wantErr error // nil with typ 0 means any error
	}{
		{in: `{"type":"offer","sdp":"` + sdpEscaped + `"}`, typ: webrtc.SDPTypeOffer, sdp: sdpText},
		{in: `{"sdp":"x","type":"answer"}`, typ: webrtc.SDPTypeAnswer, sdp: "x"},
		{in: `{"TYPE":"pranswer","Sdp":"x","extra":{"a":[1]}}`, typ: webrtc.SDPTypePranswer, sdp: "x"},
		{in: ` {"type":"rollback","sdp":""} `, typ: webrtc.SDPTypeRollback, sdp: ""},
		{in: `{"type":"offer","sdp":"a","sdp":"b"}`, typ: webrtc.SDPTypeOffer, sdp: "b"},
		{in: `{"type":"Offer","sdp":"x"}`, wantErr: ErrUnknownType},
		{in: `{"type":"","sdp":"x"}`, wantErr: ErrUnknownType},
		{in: `{"type":"unknown","sdp":"x"}`, wantErr: ErrUnknownType},
		{in: `{"sdp":"x"}`, wantErr: ErrMalformed},
		{in: `{"type":"offer"}`, wantErr: ErrMalformed},
		{in: `{"type":null,"sdp":"x"}`, wantErr: ErrMalformed},
		{in: `{"type":"offer","sdp":null}`, wantErr: ErrMalformed},
		{in: `{"type":1,"sdp":"x"}`, wantErr: ErrMalformed},
		{in: `{"type":"offer","sdp":["x"]}`, wantErr: ErrMalformed},
		{in: `{}`, wantErr: ErrMalformed},
		{in: `null`, wantErr: ErrMalformed},
		{in: `"offer"`},
		{in: `{"type":"offer","sdp":"x"`},
		{in: ``},
	} {
		got, err := Decode(tc.in)
		if tc.typ != 0 {
			if err != nil || got.Type != tc.typ || got.SDP != tc.sdp {
				t.Errorf("%s: (%+v, %v)", tc.in, got, err)
			}
			continue
		}
		if err == nil || got != nil {
			t.Errorf("%s: (%+v, %v), want error", tc.in, got, err)
			continue
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: error %v, want %v", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"type":"offer","sdp":"` + sdpEscaped + `"}`)
	f.Add(`{"TYPE":"answer","SDP":"v=0\r\n","x":null}`)
	f.Add(`{"type":null,"sdp":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Decode(s)
		if err != nil {
			if d != nil {
				t.Fatal("result and error")
			}
			return
		}
		enc, err := Encode(d)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", d, err)
		}
		again, err := Decode(enc)
		if err != nil || again.Type != d.Type || again.SDP != d.SDP {
			t.Fatalf("round trip %+v -> (%+v, %v)", d, again, err)
		}
	})
}
