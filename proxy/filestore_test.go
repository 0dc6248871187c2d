//go:build !js

package proxy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("nat-type"); ok {
		t.Fatal("empty store has a value")
	}
	if err := s.Set("nat-type", "restricted"); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s2.Get("nat-type"); !ok || v != "restricted" {
		t.Fatalf("reopened: %q %v", v, ok)
	}
	os.WriteFile(path, []byte("{bad"), 0o600)
	if _, err := OpenFileStore(path); err == nil {
		t.Fatal("corrupt file accepted")
	}
}
