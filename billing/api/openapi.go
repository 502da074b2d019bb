package api

import (
	"bytes"
	_ "embed"
	"net/http"
	"slices"
)

// openAPI is the OpenAPI 3.1 description of every /v1 route, served at
// GET /v1/openapi.json (behind the API key, like every /v1 route). Whoever
// adds a /v1 route describes it there: openapi_test.go fails, naming the
// route, for any registered route the description lacks, and the daemon's
// end-to-end test (cmd/billingd/openapi_test.go) validates real answers
// against its schemas.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns a copy of the OpenAPI 3.1 description of the /v1 API.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI) //nolint:errcheck // a failure here is the client going away
}

// routeMux is a ServeMux that remembers the patterns registered on it, so
// tests can check every route against the OpenAPI description. Routes added
// through Server.Mount go to the embedded ServeMux and are not recorded.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers and records pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers and records pattern.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Routes returns the patterns ("GET /v1/customers/{id}") that
// (*Server).Handler registered on h, in registration order, or nil if h is
// not such a handler. Routes added through Server.Mount are not included.
func Routes(h http.Handler) []string {
	if m, ok := h.(*routeMux); ok {
		return slices.Clone(m.patterns)
	}
	return nil
}
