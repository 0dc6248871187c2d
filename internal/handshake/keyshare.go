package handshake

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
)

// Named groups seen in browser hellos.
const (
	GroupX25519         = 0x001d
	GroupP256           = 0x0017
	GroupP384           = 0x0018
	GroupX25519MLKEM768 = 0x11ec
)

// ValidateClientShare checks that a ClientHello key share is a real public
// key of its group: for X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem) an
// ML-KEM-768 encapsulation key that passes FIPS 203's modulus check followed
// by an X25519 key. Random bytes of the right length fail the ML-KEM check,
// which is how a censor could tell a fake share from a browser's.
func ValidateClientShare(ks KeyShare) error {
	switch ks.Group {
	case GroupX25519MLKEM768:
		if len(ks.Key) != mlkem.EncapsulationKeySize768+32 {
			return fmt.Errorf("X25519MLKEM768 share of %d bytes, want %d", len(ks.Key), mlkem.EncapsulationKeySize768+32)
		}
		if _, err := mlkem.NewEncapsulationKey768(ks.Key[:mlkem.EncapsulationKeySize768]); err != nil {
			return fmt.Errorf("X25519MLKEM768 share: ML-KEM-768 key: %w", err)
		}
		return validateX25519(ks.Key[mlkem.EncapsulationKeySize768:])
	case GroupX25519:
		return validateX25519(ks.Key)
	case GroupP256:
		_, err := ecdh.P256().NewPublicKey(ks.Key)
		return err
	case GroupP384:
		_, err := ecdh.P384().NewPublicKey(ks.Key)
		return err
	}
	return fmt.Errorf("key share of unknown group %#04x", ks.Group)
}

// ValidateServerShare checks a ServerHello key share's size: for
// X25519MLKEM768 an ML-KEM-768 ciphertext and an X25519 key. A ciphertext
// cannot be told from random bytes without the secret key.
func ValidateServerShare(ks KeyShare) error {
	switch ks.Group {
	case GroupX25519MLKEM768:
		if len(ks.Key) != mlkem.CiphertextSize768+32 {
			return fmt.Errorf("X25519MLKEM768 server share of %d bytes, want %d", len(ks.Key), mlkem.CiphertextSize768+32)
		}
		return validateX25519(ks.Key[mlkem.CiphertextSize768:])
	}
	return ValidateClientShare(ks)
}

func validateX25519(b []byte) error {
	if _, err := ecdh.X25519().NewPublicKey(b); err != nil {
		return fmt.Errorf("X25519 share: %w", err)
	}
	return nil
}
