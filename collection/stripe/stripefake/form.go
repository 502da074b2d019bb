package stripefake

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params is a request's form (query string or body) keyed by bracket path,
// with array indices removed: payment_method_types[0] and
// payment_method_types[] both become "payment_method_types[]", and the
// values of an array are in index order.
type params map[string][]string

// parseParams parses Stripe's bracket notation: a name followed by any
// number of [segment]s, where an empty or numeric segment is an array index
// (except under metadata, whose keys may be numeric).
func parseParams(v url.Values) (params, error) {
	type entry struct {
		key  string
		idx  int
		vals []string
	}
	var entries []entry
	for raw, vals := range v {
		name, rest, nested := strings.Cut(raw, "[")
		if name == "" || strings.Contains(name, "]") {
			return nil, fmt.Errorf("Invalid parameter name: %s", raw)
		}
		key, idx := name, 0
		if nested {
			rest = "[" + rest
		}
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if rest[0] != '[' || end < 0 {
				return nil, fmt.Errorf("Invalid parameter name: %s", raw)
			}
			seg := rest[1:end]
			if n, err := strconv.Atoi(seg); name != "metadata" && (seg == "" || err == nil && n >= 0) {
				key, idx = key+"[]", n
			} else {
				key += "[" + seg + "]"
			}
			rest = rest[end+1:]
		}
		entries = append(entries, entry{key, idx, vals})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].key != entries[j].key {
			return entries[i].key < entries[j].key
		}
		return entries[i].idx < entries[j].idx
	})
	p := params{}
	for _, e := range entries {
		p[e.key] = append(p[e.key], e.vals...)
	}
	return p, nil
}

// get returns the first value of key, and whether it was sent.
func (p params) get(key string) (string, bool) {
	v, ok := p[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// unknown returns the first key, in sorted order, that is neither in
// allowed nor a one-level key under an allowed "name[*]" prefix.
func (p params) unknown(allowed ...string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
next:
	for _, k := range keys {
		for _, a := range allowed {
			if k == a {
				continue next
			}
			if prefix, ok := strings.CutSuffix(a, "[*]"); ok {
				if sub, ok := strings.CutPrefix(k, prefix+"["); ok && strings.Count(sub, "[") == 0 && strings.HasSuffix(sub, "]") {
					continue next
				}
			}
		}
		return k
	}
	return ""
}

// metadata collects the metadata[key] parameters.
func (p params) metadata() map[string]string {
	m := map[string]string{}
	for k, v := range p {
		if sub, ok := strings.CutPrefix(k, "metadata["); ok && len(v) > 0 {
			m[strings.TrimSuffix(sub, "]")] = v[0]
		}
	}
	return m
}
