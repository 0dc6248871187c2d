//go:build !js

package proxy

import "crypto/rand"

// randomBytes fills b from the system's secure random source.
func randomBytes(b []byte) { rand.Read(b) }
