package fingerprint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// oidCommonName is id-at-commonName.
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// CertificateTemplate returns a key and a self-signed certificate template
// shaped like the profile's DTLS certificate: an ECDSA P-256 key, the same
// CN in the same ASN.1 string type (Go's x509 would pick PrintableString,
// which is how pion's certificates stand out), a random serial of the
// profile's size, valid from a day ago for the profile's validity. Pass
// both to webrtc.NewCertificate.
func (p *Profile) CertificateTemplate(now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	c := p.Certificate
	if c.KeyType != "ECDSA P-256" {
		return nil, nil, fmt.Errorf("fingerprint: %s uses a %s key, only ECDSA P-256 is supported", p.Browser, c.KeyType)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	var tag string
	switch c.CNType {
	case "UTF8String":
		tag = "utf8"
	case "PrintableString":
		tag = "printable"
	default:
		return nil, nil, fmt.Errorf("fingerprint: CN string type %q is not supported", c.CNType)
	}
	// asn1 has no per-value tag option for a struct field set at run time:
	// marshal the value alone with the tag, then wrap it.
	val, err := asn1.MarshalWithParams(c.CN, tag)
	if err != nil {
		return nil, nil, err
	}
	rdn, err := asn1.Marshal(pkix.RDNSequence{{{Type: oidCommonName, Value: asn1.RawValue{FullBytes: val}}}})
	if err != nil {
		return nil, nil, err
	}
	// A positive serial whose DER content is SerialBytes long at most:
	// 8 random bytes give 8, or 9 when the top bit needs a zero byte.
	bits := (c.SerialBytes - 1) * 8
	if bits < 8 {
		bits = 8
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		return nil, nil, err
	}
	notBefore := now.Add(-24 * time.Hour)
	tpl := &x509.Certificate{
		SerialNumber:       serial,
		RawSubject:         rdn,
		Subject:            pkix.Name{CommonName: c.CN},
		NotBefore:          notBefore,
		NotAfter:           notBefore.Add(time.Duration(c.ValidityHours) * time.Hour),
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	return key, tpl, nil
}
