// Package bridgelist reads the broker's bridge list: the bridges that
// clients may ask for by fingerprint, each with the WebSocket address that
// proxies are told to relay to (PROTOCOL.md §3.8).
//
// The file is JSON Lines: one object per line with exactly the keys
// displayName, webSocketAddress and fingerprint. Unknown keys, a missing
// fingerprint or address, a duplicate fingerprint or any malformed line
// rejects the whole file. Blank lines are ignored.
package bridgelist

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
)

// DefaultWebSocketAddress is the relay of the built-in default bridge.
const DefaultWebSocketAddress = "wss://snowflake.torproject.net/"

// ErrFormat reports a malformed bridge list.
var ErrFormat = errors.New("bridge list")

// maxLine bounds one line of the file.
const maxLine = 64 << 10

// Bridge is one entry of the list.
type Bridge struct {
	DisplayName      string
	WebSocketAddress string
	Fingerprint      bridgefingerprint.Fingerprint
	// Host is the hostname of WebSocketAddress, for relay pattern checks.
	Host string
}

// List is an immutable set of bridges keyed by fingerprint.
type List struct {
	byFP    map[bridgefingerprint.Fingerprint]*Bridge
	bridges []*Bridge // file order
}

// Default returns the built-in list: the original Snowflake bridge.
func Default() *List {
	l, err := Parse(strings.NewReader(`{"displayName":"default","webSocketAddress":"` +
		DefaultWebSocketAddress + `","fingerprint":"` + bridgefingerprint.Default + `"}`))
	if err != nil {
		panic(err) // a constant input
	}
	return l
}

// Load reads the list at path.
func Load(path string) (*List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bridge list: %w", err)
	}
	defer f.Close()
	l, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

type line struct {
	DisplayName      string `json:"displayName"`
	WebSocketAddress string `json:"webSocketAddress"`
	Fingerprint      string `json:"fingerprint"`
}

// Parse reads a list in the JSON Lines format described above. An empty list
// is an error, since a broker without bridges could serve no client.
func Parse(r io.Reader) (*List, error) {
	l := &List{byFP: make(map[bridgefingerprint.Fingerprint]*Bridge)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		b, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrFormat, n, err)
		}
		if _, dup := l.byFP[b.Fingerprint]; dup {
			return nil, fmt.Errorf("%w: line %d: duplicate fingerprint %s", ErrFormat, n, b.Fingerprint)
		}
		l.byFP[b.Fingerprint] = b
		l.bridges = append(l.bridges, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %w", ErrFormat, n+1, err)
	}
	if len(l.bridges) == 0 {
		return nil, fmt.Errorf("%w: no bridges", ErrFormat)
	}
	return l, nil
}

func parseLine(text []byte) (*Bridge, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var v line
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the object")
	}
	fp, err := bridgefingerprint.Parse(v.Fingerprint)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(v.WebSocketAddress)
	if err != nil {
		return nil, fmt.Errorf("webSocketAddress: %w", err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" {
		return nil, fmt.Errorf("webSocketAddress %q: want a ws:// or wss:// URL with a host", v.WebSocketAddress)
	}
	return &Bridge{
		DisplayName:      v.DisplayName,
		WebSocketAddress: v.WebSocketAddress,
		Fingerprint:      fp,
		Host:             u.Hostname(),
	}, nil
}

// Lookup returns the bridge with fingerprint fp.
func (l *List) Lookup(fp bridgefingerprint.Fingerprint) (*Bridge, bool) {
	b, ok := l.byFP[fp]
	return b, ok
}

// Bridges returns the entries in file order.
func (l *List) Bridges() []*Bridge { return slices.Clone(l.bridges) }
