package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"billingd/billing/metrics"
	"billingd/billing/webhook"
)

// specMethods are the operation keys of an OpenAPI path item.
var specMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadSpec parses the embedded description.
func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("billing/api/openapi.json is not JSON: %v", err)
	}
	return doc
}

// resolve follows a local $ref ("#/components/…") in doc, once.
func resolve(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		next, ok := cur.(map[string]any)[tok]
		if !ok {
			t.Errorf("$ref %q does not resolve", ref)
			return nil
		}
		cur = next
	}
	r, _ := cur.(map[string]any)
	return r
}

// specPath turns a ServeMux pattern's path into an OpenAPI path template:
// "{name...}" becomes "{name}" and "{$}" goes.
func specPath(p string) string {
	p = strings.TrimSuffix(p, "{$}")
	return strings.ReplaceAll(p, "...}", "}")
}

// allRoutes returns the patterns a Server with every optional part set
// registers. When you add a route that is registered only if some field of
// Server is set, set that field here so that the route is checked.
func allRoutes() []string {
	s := &Server{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Export: http.NotFoundHandler(),
		Webhooks: &webhook.Service{}}
	return Routes(s.Handler())
}

// TestOpenAPIDescribesEveryRoute fails, naming the route, when a /v1 route
// registered by (*Server).Handler is missing from openapi.json, and when the
// description has an operation no route serves.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	paths, _ := doc["paths"].(map[string]any)
	routes := allRoutes()
	if len(routes) == 0 {
		t.Fatal("Routes(s.Handler()) is empty: Handler no longer records its patterns (see routeMux in openapi.go)")
	}
	registered := map[string]bool{}
	for _, pattern := range routes {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		if path == "/v1/" && method == "" {
			continue // the catch-all that answers 404 for unknown /v1 URLs
		}
		if method == "" {
			t.Errorf("route %q has no method: give /v1 routes a method so that they can be described", pattern)
			continue
		}
		sp := specPath(path)
		registered[strings.ToLower(method)+" "+sp] = true
		item, _ := paths[sp].(map[string]any)
		if _, ok := item[strings.ToLower(method)]; !ok {
			t.Errorf("route %q is registered in (*Server).Handler but not described in billing/api/openapi.json: add paths[%q].%s with its parameters, request body and responses",
				pattern, sp, strings.ToLower(method))
		}
	}
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(map[string]any)
		for _, m := range specMethods {
			if _, ok := item[m]; ok && !registered[m+" "+p] {
				t.Errorf("billing/api/openapi.json describes %s %s, which (*Server).Handler does not register", strings.ToUpper(m), p)
			}
		}
	}
}

// TestOpenAPIDocument checks the description's shape: OpenAPI 3.1, unique
// operation ids, responses on every operation, path parameters declared,
// every $ref resolving and every schema valid JSON Schema 2020-12.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadSpec(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi is %q, want 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info needs title and version: %v", info)
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	ids := map[string]string{}
	var schemaPointers []string
	for _, p := range sortedKeys(paths) {
		if !strings.HasPrefix(p, "/v1/") {
			t.Errorf("path %q: only /v1 routes are described", p)
		}
		item, _ := paths[p].(map[string]any)
		for _, m := range specMethods {
			raw, ok := item[m]
			if !ok {
				continue
			}
			name := strings.ToUpper(m) + " " + p
			op, _ := raw.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", name)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %q is also %s's", name, id, other)
			}
			ids[id] = name
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s: no responses", name)
			}
			if responses["200"] == nil {
				t.Errorf("%s: no 200 response", name)
			}
			for code, r := range responses {
				resp := resolve(t, doc, r)
				if resp["description"] == nil {
					t.Errorf("%s: response %s has no description", name, code)
				}
			}
			// Every {name} in the path is a declared path parameter.
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, raw := range params {
				if prm := resolve(t, doc, raw); prm["in"] == "path" {
					declared[prm["name"].(string)] = true
					if prm["required"] != true {
						t.Errorf("%s: path parameter %v must be required", name, prm["name"])
					}
				}
			}
			for _, w := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
				if !declared[w[1]] {
					t.Errorf("%s: path parameter %q is not declared", name, w[1])
				}
			}
		}
	}
	// Every $ref resolves; every schema is collected for compilation.
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("%s: $ref %q is not local", ptr, ref)
				} else {
					resolve(t, doc, v)
				}
			}
			for _, k := range sortedKeys(v) {
				child := ptr + "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
				if k == "schema" || strings.HasPrefix(ptr, "#/components/schemas") && strings.Count(child, "/") == 3 {
					schemaPointers = append(schemaPointers, child)
					continue
				}
				walk(child, v[k])
			}
		case []any:
			for i, e := range v {
				walk(ptr+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", doc)
	if len(schemaPointers) < 20 {
		t.Fatalf("found only %d schemas", len(schemaPointers))
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPI))
	if err != nil {
		t.Fatal(err)
	}
	const base = "https://billingd.invalid/openapi.json"
	if err := c.AddResource(base, inst); err != nil {
		t.Fatal(err)
	}
	for _, ptr := range schemaPointers {
		if _, err := c.Compile(base + ptr); err != nil {
			t.Errorf("schema %s: %v", ptr, err)
		}
	}
}

// TestOpenAPIServed checks GET /v1/openapi.json: the embedded document,
// behind the API key like every /v1 route.
func TestOpenAPIServed(t *testing.T) {
	s := &Server{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), APIKeyHash: HashKey("sk_test")}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get := func(key string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/openapi.json", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, _ := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the key: %d, want 401", resp.StatusCode)
	}
	resp, body := get("sk_test")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, OpenAPI()) {
		t.Errorf("with the key: %d %q, %d bytes (want the %d embedded)", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(openAPI))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
