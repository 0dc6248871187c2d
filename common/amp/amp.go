// Package amp implements the AMP cache rendezvous encodings (PROTOCOL.md
// §3.4, §4.2): the request path that carries a client poll, the AMP cache
// URL rewriting, and the HTML "armor" that carries the broker's reply.
package amp

import (
	"errors"
	"io"
	"net/url"
)

// ErrUnknownArmorVersion reports an armored payload not starting with "0".
var ErrUnknownArmorVersion = errors.New("unknown armor version indicator")

// EncodePath returns the path suffix "0<cacheBreaker>/<base64url(data)>",
// where cacheBreaker is 12 random base64url characters.
func EncodePath(data []byte) string { panic("TODO") }

// DecodePath decodes a path produced by EncodePath (the part after
// "/amp/client/"): it must start with "0"; everything after the last "/" is
// unpadded base64url.
func DecodePath(path string) ([]byte, error) { panic("TODO") }

// CacheURL rewrites pubURL to its form under the AMP cache at cacheURL, with
// content type contentType ("c" for documents).
func CacheURL(pubURL, cacheURL *url.URL, contentType string) (*url.URL, error) { panic("TODO") }

// DomainPrefix returns the AMP cache subdomain label for domain.
func DomainPrefix(domain string) string { panic("TODO") }

// NewArmorEncoder returns a writer that armors what is written to it into an
// AMP HTML document on w; Close finishes the document.
func NewArmorEncoder(w io.Writer) (io.WriteCloser, error) { panic("TODO") }

// NewArmorDecoder returns a reader of the payload armored in the HTML read
// from r.
func NewArmorDecoder(r io.Reader) io.Reader { panic("TODO") }
