// Package utlsrt provides an http.RoundTripper whose TLS ClientHello imitates
// a web browser's, using uTLS. It negotiates HTTP/2 or HTTP/1.1 by ALPN, as a
// browser would, and can leave the SNI extension out. Snowfall uses it only
// for the connection to the broker (PROTOCOL.md §4.3).
package utlsrt

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	utls "github.com/refraction-networking/utls"
)

// ErrUnknownID reports a ClientHello name that is not in Names.
var ErrUnknownID = errors.New("unknown uTLS ClientHello name")

// ids holds the names Snowflake 2.5.1 accepts for utls-imitate, lowercase,
// and ours: "chromium" (the captured profile, the default) and "none" (Go's
// own TLS).
var ids = map[string]utls.ClientHelloID{
	"chromium":              HelloChromium,
	"none":                  HelloNone,
	"hellorandomizedalpn":   utls.HelloRandomizedALPN,
	"hellorandomizednoalpn": utls.HelloRandomizedNoALPN,
	"hellofirefox_auto":     utls.HelloFirefox_Auto,
	"hellofirefox_55":       utls.HelloFirefox_55,
	"hellofirefox_56":       utls.HelloFirefox_56,
	"hellofirefox_63":       utls.HelloFirefox_63,
	"hellofirefox_65":       utls.HelloFirefox_65,
	"hellochrome_auto":      utls.HelloChrome_Auto,
	"hellochrome_58":        utls.HelloChrome_58,
	"hellochrome_62":        utls.HelloChrome_62,
	"hellochrome_70":        utls.HelloChrome_70,
	"hellochrome_72":        utls.HelloChrome_72,
	"helloios_auto":         utls.HelloIOS_Auto,
	"helloios_11_1":         utls.HelloIOS_11_1,
	"helloios_12_1":         utls.HelloIOS_12_1,
}

// ParseClientHelloID returns the uTLS ClientHelloID named name, compared
// case-insensitively (for example "chromium", "none", "hellochrome_auto" or
// "HelloFirefox_65").
func ParseClientHelloID(name string) (utls.ClientHelloID, error) {
	id, ok := ids[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return utls.ClientHelloID{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownID, name, strings.Join(Names(), ", "))
	}
	return id, nil
}

// Names returns the accepted ClientHello names, sorted.
func Names() []string {
	names := make([]string, 0, len(ids))
	for n := range ids {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
