package turbotunnel

import (
	"errors"
	"fmt"
	"io"
)

// PrologueLen is the length of a carrier's prologue: Token and ClientID.
const PrologueLen = len(Token) + len(ClientID{})

// Prologue errors, to be tested with errors.Is.
var (
	// ErrNoPrologue: the stream ended before its first byte. Proxies open
	// carriers they never use, so this is an ordinary end.
	ErrNoPrologue = errors.New("turbotunnel: closed before the prologue")
	// ErrBadToken: the stream does not start with Token.
	ErrBadToken = errors.New("turbotunnel: wrong token")
	// ErrShortPrologue: the stream ended inside the prologue.
	ErrShortPrologue = errors.New("turbotunnel: truncated prologue")
)

// WritePrologue starts a carrier for id (PROTOCOL.md §6.1). Token and
// ClientID go in two writes, hence two data-channel messages, as Tor's
// client sends them.
func WritePrologue(w io.Writer, id ClientID) error {
	if _, err := w.Write(Token[:]); err != nil {
		return fmt.Errorf("turbotunnel: writing prologue: %w", err)
	}
	if _, err := w.Write(id[:]); err != nil {
		return fmt.Errorf("turbotunnel: writing prologue: %w", err)
	}
	return nil
}

// ReadPrologue reads the token and ClientID that start every carrier. It
// reads exactly PrologueLen bytes, and stops after the token if that is
// wrong.
func ReadPrologue(r io.Reader) (ClientID, error) {
	var buf [PrologueLen]byte
	_, err := io.ReadFull(r, buf[:len(Token)])
	switch {
	case err == io.EOF:
		return ClientID{}, ErrNoPrologue
	case err == io.ErrUnexpectedEOF:
		return ClientID{}, ErrShortPrologue
	case err != nil:
		return ClientID{}, fmt.Errorf("turbotunnel: reading prologue: %w", err)
	}
	if [8]byte(buf[:len(Token)]) != Token {
		return ClientID{}, ErrBadToken
	}
	if _, err := io.ReadFull(r, buf[len(Token):]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return ClientID{}, ErrShortPrologue
		}
		return ClientID{}, fmt.Errorf("turbotunnel: reading prologue: %w", err)
	}
	return ClientID(buf[len(Token):]), nil
}
