//go:build js

package proxy

// defaultPoster is nil in a browser: the page brings its own (fetch), so
// that the browser build links no net/http.
func defaultPoster() Poster { return nil }
