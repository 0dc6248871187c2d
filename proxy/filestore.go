//go:build !js

package proxy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// maxStoreFile bounds the settings file read at start.
const maxStoreFile = 64 * 1024

// FileStore is a Store kept in a small JSON file, rewritten atomically on
// every change.
type FileStore struct {
	path string
	mu   sync.Mutex
	m    map[string]string
}

// OpenFileStore reads path if it exists. A missing file is an empty store;
// an unreadable or corrupt one is an error.
func OpenFileStore(path string) (*FileStore, error) {
	s := &FileStore{path: path, m: make(map[string]string)}
	data, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return s, nil
	case err != nil:
		return nil, err
	case len(data) > maxStoreFile:
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStoreFile)
	}
	if err := json.Unmarshal(data, &s.m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Get implements Store.
func (s *FileStore) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Set implements Store.
func (s *FileStore) Set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[key] == value {
		return nil
	}
	s.m[key] = value
	data, err := json.MarshalIndent(s.m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}
