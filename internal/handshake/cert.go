package handshake

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CertShape is what an observer can tell about a self-signed WebRTC
// certificate without knowing who made it.
type CertShape struct {
	// CN is the subject common name; CNType its ASN.1 string type
	// ("UTF8String", "PrintableString", ...).
	CN, CNType string
	// SerialBytes is the DER length of the serial number's content.
	SerialBytes int
	// Validity is NotAfter - NotBefore.
	Validity  time.Duration
	NotBefore time.Time
	// KeyType is "ECDSA P-256", "RSA", ...; SignatureAlgorithm as x509
	// names it.
	KeyType            string
	SignatureAlgorithm string
	// DERSize is the certificate's length.
	DERSize int
	// Extensions counts the X.509 extensions.
	Extensions int
}

var oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}

// ParseCertShape parses a DER certificate.
func ParseCertShape(der []byte) (*CertShape, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	s := &CertShape{
		CN:                 c.Subject.CommonName,
		Validity:           c.NotAfter.Sub(c.NotBefore),
		NotBefore:          c.NotBefore,
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		DERSize:            len(der),
		Extensions:         len(c.Extensions),
		SerialBytes:        serialLen(c.RawTBSCertificate),
	}
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		s.KeyType = "ECDSA " + k.Curve.Params().Name
	default:
		s.KeyType = c.PublicKeyAlgorithm.String()
	}
	s.CNType, err = cnType(c.RawSubject)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// serialLen reads the serial's DER content length from the TBS: x509
// gives only its value, which loses leading zero bytes.
func serialLen(tbs []byte) int {
	s := cryptobyte.String(tbs)
	var inner, serial cryptobyte.String
	if !s.ReadASN1(&inner, cbasn1.SEQUENCE) {
		return 0
	}
	inner.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific())
	if !inner.ReadASN1(&serial, cbasn1.INTEGER) {
		return 0
	}
	return len(serial)
}

var stringTypes = map[cbasn1.Tag]string{
	cbasn1.UTF8String:      "UTF8String",
	cbasn1.PrintableString: "PrintableString",
	cbasn1.IA5String:       "IA5String",
	cbasn1.T61String:       "T61String",
	cbasn1.Tag(28):         "UniversalString",
	cbasn1.Tag(30):         "BMPString",
}

// cnType walks the subject's RDNs for the common name's string tag.
func cnType(rawSubject []byte) (string, error) {
	s := cryptobyte.String(rawSubject)
	var rdns cryptobyte.String
	if !s.ReadASN1(&rdns, cbasn1.SEQUENCE) {
		return "", fmt.Errorf("certificate subject: %w", ErrMalformed)
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return "", fmt.Errorf("certificate subject: %w", ErrMalformed)
		}
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			var tag cbasn1.Tag
			var val cryptobyte.String
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&val, &tag) {
				return "", fmt.Errorf("certificate subject: %w", ErrMalformed)
			}
			if oid.Equal(oidCN) {
				if n, ok := stringTypes[tag]; ok {
					return n, nil
				}
				return fmt.Sprintf("tag %d", tag), nil
			}
		}
	}
	return "", nil
}

// Certificates parses a TLS 1.2 Certificate message body (RFC 5246
// §7.4.2): a 3-byte-length list of 3-byte-length DER certificates.
func Certificates(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, fmt.Errorf("Certificate: %w", ErrMalformed)
	}
	var out [][]byte
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&der) {
			return nil, fmt.Errorf("Certificate: %w", ErrTruncated)
		}
		out = append(out, der)
	}
	return out, nil
}
