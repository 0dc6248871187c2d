package sdpwire

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, d := range []Desc{
		{TypeOffer, "v=0\r\na=candidate:1 1 udp 1 203.0.113.7 40813 typ host\r\n"},
		{TypeAnswer, ""},
		{TypePranswer, "<&>\u2028"},
		{TypeRollback, "x"},
	} {
		s, err := Encode(d)
		if err != nil {
			t.Fatalf("%+v: %v", d, err)
		}
		back, err := Decode(s)
		if err != nil || back != d {
			t.Fatalf("%+v -> %s -> (%+v, %v)", d, s, back, err)
		}
	}
	if got, _ := Encode(Desc{TypeAnswer, "v=0\r\n"}); got != `{"type":"answer","sdp":"v=0\r\n"}` {
		t.Errorf("encoding %s: want the reference's key order and escapes", got)
	}
}

func TestErrors(t *testing.T) {
	if _, err := Encode(Desc{Type: "Offer"}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Encode of an unknown type: %v", err)
	}
	for in, want := range map[string]error{
		`{"type":"answer"}`:            ErrMalformed,
		`{"type":1,"sdp":""}`:          ErrMalformed,
		`{"type":"offer","sdp":null}`:  ErrMalformed,
		`[`:                            ErrMalformed,
		`{"type":"bogus","sdp":"v=0"}`: ErrUnknownType,
	} {
		if _, err := Decode(in); !errors.Is(err, want) {
			t.Errorf("Decode(%s) = %v, want %v", in, err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"type":"offer","sdp":"v=0\r\n"}`)
	f.Add(`{"TYPE":"answer","SDP":"","x":null}`)
	f.Add(`{"type":null,"sdp":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Decode(s)
		if err != nil {
			if d != (Desc{}) {
				t.Fatal("result and error")
			}
			return
		}
		enc, err := Encode(d)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", d, err)
		}
		if again, err := Decode(enc); err != nil || again != d {
			t.Fatalf("round trip %+v -> (%+v, %v)", d, again, err)
		}
	})
}
