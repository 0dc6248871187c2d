//go:build !js

package proxy

import (
	"strings"

	"golang.org/x/net/idna"
)

// relayNameToASCII maps a relay hostname to its ASCII form by UTS #46
// (IDNA 2008 as browsers apply it: full-width characters, case and dots
// folded, labels to punycode) and refuses names that IDNA rejects.
func relayNameToASCII(host string) (string, error) {
	ascii, err := idnaProfile.ToASCII(host)
	if err != nil {
		return "", err
	}
	return strings.ToLower(ascii), nil
}

// idnaProfile is lookup processing without the STD3 rules, which would
// refuse the underscores some deployed names have.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false), idna.BidiRule())
