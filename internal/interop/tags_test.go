package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestIntegrationTagged keeps go test ./... runnable by an ordinary user:
// every other test file of this package needs root and real peers, so it
// must carry the integration build tag (make test sets it). A file without
// the tag would run, and fail, for everyone.
func TestIntegrationTagged(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if f == "tags_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("//go:build integration\n")) {
			t.Errorf("%s does not start with //go:build integration", f)
		}
	}
}
