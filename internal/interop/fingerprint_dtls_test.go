//go:build integration && dtlsmimicry

// These tests compare our chain's DTLS handshake with Chromium's. They fail
// with today's stack (pion/webrtc v4: stock DTLS 1.2 hello, JA4
// dd2i080600_...) and are kept out of `make test` by their build tag until
// the pion v5 migration; run them with
//
//	SNOWFALL_BIN=$PWD/bin go test -tags "integration dtlsmimicry" -count=1 -v -run 'TestFingerprintDTLS|TestCensorPassesOurProxy' ./internal/interop/
package interop

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/fingerprint"
	"github.com/snowfall-pt/snowfall/internal/fingerprint/capture"
	"github.com/snowfall-pt/snowfall/internal/handshake"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// ourDTLS runs our client and proxy (the proxy is the DTLS client, our
// client the DTLS server), opens n peers, and returns their handshakes as
// captured in the client's namespace.
func ourDTLS(ctx context.Context, t *testing.T, n int) []*handshake.DTLSHandshake {
	t.Helper()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Snowfall, Proxies: n})
	capt, err := testbed.StartCapture(c.Cli, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Stop()
	args := append(c.BridgeArgs(), testbed.Arg{Key: "max", Value: fmt.Sprint(n)})
	conn, err := c.Client.Dial(ctx, PlaceholderBridge, args)
	if err != nil {
		t.Fatalf("dial: %v\n%v", err, c.CheckAlive())
	}
	if tr, err := testbed.Download(ctx, conn, 200_000, 31); err != nil || !tr.OK() {
		t.Fatalf("download: %v (%v)", err, tr)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = capt.WaitFor(wctx, func(ps []testbed.Packet) bool {
		hs, err := capture.Handshakes(capture.DTLSFlows(ps))
		if err != nil || len(hs) < n {
			return false
		}
		for _, h := range hs {
			if h.ServerHello == nil {
				return false
			}
		}
		return true
	})
	werr := err
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	flows := capture.DTLSFlows(capt.Packets())
	// Keep the datagrams, in internal/handshake's testdata format.
	for i, f := range flows {
		var b []byte
		for j, d := range f.Datagrams {
			side := "S "
			if f.ClientToServer[j] {
				side = "C "
			}
			b = append(append(append(b, side...), hex.EncodeToString(d)...), '\n')
		}
		os.WriteFile(filepath.Join(c.Cfg.Dir, fmt.Sprintf("ours-dtls-%d.txt", i+1)), b, 0o644)
	}
	hs, err := capture.Handshakes(flows)
	if err != nil {
		t.Fatal(err)
	}
	if werr != nil {
		// Compare what there is, but the test fails.
		t.Errorf("waiting for %d complete DTLS handshakes: %v; %d flows, %d handshakes seen", n, werr, len(flows), len(hs))
		if len(hs) == 0 {
			t.FailNow()
		}
	}
	return hs
}

func hexList(vs []uint16) []fingerprint.Hex16 {
	return fingerprint.Hex16s(normalizedGREASE(vs))
}

// compareDTLS checks one of our handshakes against Chromium's, field by
// field, as an observer on the path sees them.
func compareDTLS(t *testing.T, who string, h *handshake.DTLSHandshake, want *fingerprint.Profile) {
	t.Helper()
	ch, wc := h.ClientHello, want.DTLSClient
	eq := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %s %v, Chromium %v", who, what, got, want)
		}
	}
	eq("ClientHello JA4", ch.JA4(handshake.OverDTLS), wc.JA4)
	eq("JA3 (extensions sorted)", ch.JA3().Sorted().String(), wc.JA3Sorted)
	eq("record version", fingerprint.Hex16(h.FirstRecordVersion), wc.RecordVersion)
	eq("legacy version", fingerprint.Hex16(ch.LegacyVersion), wc.LegacyVersion)
	eq("hello size", h.HelloSize, wc.HelloSize)
	eq("hello datagrams", h.HelloDatagrams, wc.Datagrams)
	eq("cipher suites", hexList(ch.CipherSuites), wc.CipherSuites)
	set := hexList(ch.ExtensionTypes())
	slices.Sort(set)
	eq("extension set", set, wc.Extensions)
	eq("groups", hexList(ch.SupportedGroups), wc.SupportedGroups)
	eq("signature algorithms", hexList(ch.SignatureAlgorithms), wc.SignatureAlgorithms)
	eq("SRTP profiles", hexList(ch.SRTPProfiles), wc.SRTPProfiles)
	eq("supported versions", hexList(ch.SupportedVersions), wc.SupportedVersions)
	var groups []uint16
	var sizes []int
	for _, ks := range ch.KeyShares {
		groups, sizes = append(groups, ks.Group), append(sizes, len(ks.Key))
		if err := handshake.ValidateClientShare(ks); err != nil {
			t.Errorf("%s: key share: %v", who, err)
		}
	}
	eq("key share groups", hexList(groups), wc.KeyShareGroups)
	eq("key share sizes", sizes, wc.KeyShareSizes)
	ws := want.DTLSServer
	eq("HelloVerifyRequest", h.HelloVerifyRequest != nil, ws.HelloVerify)
	eq("HelloRetryRequest", h.HelloRetryRequest != nil, ws.HelloRetry)
	if h.ServerHello == nil {
		t.Errorf("%s: no ServerHello", who)
		return
	}
	sh := h.ServerHello
	eq("ServerHello JA4S", sh.JA4S(handshake.OverDTLS, ""), ws.JA4S)
	eq("negotiated version", fingerprint.Hex16(sh.Version()), ws.Version)
	eq("ServerHello suite", fingerprint.Hex16(sh.CipherSuite), ws.CipherSuite)
	eq("ServerHello extensions", hexList(sh.ExtensionTypes()), ws.Extensions)
	if sh.KeyShare != nil {
		eq("server key share size", len(sh.KeyShare.Key), ws.KeyShareSize)
	}
	var counts []int
	for _, f := range h.Flights[:min(3, len(h.Flights))] {
		counts = append(counts, len(f.HandshakeRecords))
	}
	eq("records in the first three flights", counts, ws.FirstFlightCounts)
	// DTLS 1.3 encrypts certificates; in 1.2 they must look like
	// Chromium's.
	for _, der := range append(h.ClientCertificates, h.ServerCertificates...) {
		if ws.Version == 0xfefc {
			t.Errorf("%s: a certificate in the clear, where Chromium negotiates DTLS 1.3", who)
		}
		s, err := handshake.ParseCertShape(der)
		if err != nil {
			t.Errorf("%s: %v", who, err)
			continue
		}
		wcrt := want.Certificate
		eq("certificate CN", s.CN, wcrt.CN)
		eq("certificate CN type", s.CNType, wcrt.CNType)
		if s.SerialBytes < wcrt.SerialBytes-1 || s.SerialBytes > wcrt.SerialBytes {
			t.Errorf("%s: certificate serial of %d bytes, Chromium %d", who, s.SerialBytes, wcrt.SerialBytes)
		}
		eq("certificate validity (hours)", int(s.Validity.Hours()), wcrt.ValidityHours)
		eq("certificate key", s.KeyType, wcrt.KeyType)
	}
}

// TestFingerprintDTLS captures Chromium's DTLS handshakes (two of its
// peers) and our chain's (our proxy to our client) in one run and compares
// them.
func TestFingerprintDTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	live, _ := liveChromium(ctx, t)
	ours := ourDTLS(ctx, t, 2)
	for i, h := range ours {
		compareDTLS(t, fmt.Sprintf("our DTLS #%d", i+1), h, live)
	}
	if live.DTLSClient.PermutesExtensions && len(ours) >= 2 &&
		slices.Equal(ours[0].ClientHello.ExtensionTypes(), ours[1].ClientHello.ExtensionTypes()) {
		t.Errorf("Chromium permutes its DTLS extensions; ours kept %04x twice", ours[0].ClientHello.ExtensionTypes())
	}
}

// TestCensorPassesOurProxy is TestCensorBlocksPionProxy's other half: with
// the same rule in place our proxy still serves our client.
func TestCensorPassesOurProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Snowfall})
	censor, err := testbed.InstallPionDTLSCensor(ctx, c.Cli)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, censoredDialTimeout)
	conn, err := c.Dial(dctx)
	dcancel()
	if err != nil {
		dropped, _ := censor.Dropped(ctx)
		t.Fatalf("our proxy behind the censor: %v (censor dropped %d hellos)", err, dropped)
	}
	down, err := testbed.Download(ctx, conn, 2_000_000, 23)
	if err != nil || !down.OK() {
		t.Fatalf("download: %v (%v)", err, down)
	}
	if dropped, err := censor.Dropped(ctx); err != nil || dropped != 0 {
		t.Errorf("censor dropped %d of our hellos (%v)", dropped, err)
	}
}
