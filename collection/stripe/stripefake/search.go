package stripefake

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// search serves GET /v1/payment_intents/search, newest first, with
// page_<offset> cursors. s.mu is held.
func (s *Server) search(p params) (int, any) {
	if k := p.unknown("query", "limit", "page", "expand[]"); k != "" {
		return 400, invalid("parameter_unknown", k, "Received unknown parameter: "+k)
	}
	q, ok := p.get("query")
	if !ok {
		return 400, invalid("parameter_missing", "query", "Missing required param: query.")
	}
	match, err := parseQuery(q)
	if err != nil {
		return 400, invalid("parameter_invalid", "query", err.Error())
	}
	limit, offset := 10, 0
	if l, ok := p.get("limit"); ok {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 100 {
			return 400, invalid("parameter_invalid", "limit", "limit must be between 1 and 100.")
		}
	}
	if pg, ok := p.get("page"); ok {
		if offset, err = strconv.Atoi(strings.TrimPrefix(pg, "page_")); err != nil || offset < 0 {
			return 400, invalid("parameter_invalid", "page", "Invalid page: "+pg)
		}
	}
	var hits []*intent
	for _, pi := range s.intents {
		if match(pi) {
			hits = append(hits, pi)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Created != hits[j].Created {
			return hits[i].Created > hits[j].Created
		}
		return hits[i].ID > hits[j].ID
	})
	data := []any{}
	for i := offset; i < len(hits) && i < offset+limit; i++ {
		data = append(data, hits[i].render(nil))
	}
	var next any
	if offset+limit < len(hits) {
		next = fmt.Sprintf("page_%d", offset+limit)
	}
	return 200, map[string]any{"object": "search_result", "url": "/v1/payment_intents/search",
		"data": data, "has_more": next != nil, "next_page": next}
}

// parseQuery compiles the subset of Stripe's search language the fake
// understands: clauses joined by AND, each field:'value', field:"value",
// metadata['key']:'value', or created/amount with :, >, >=, <, <= and a number.
func parseQuery(q string) (func(*intent) bool, error) {
	var clauses []func(*intent) bool
	for rest := strings.TrimSpace(q); rest != ""; {
		if len(clauses) > 0 {
			after, ok := strings.CutPrefix(rest, "AND ")
			if !ok {
				return nil, fmt.Errorf("stripefake: unsupported search query near %q (only AND is supported)", rest)
			}
			rest = strings.TrimLeft(after, " ")
		}
		field, metaKey := "", ""
		if after, ok := strings.CutPrefix(rest, "metadata["); ok {
			k, after, err := unquote(after)
			if err != nil || !strings.HasPrefix(after, "]") {
				return nil, fmt.Errorf("Invalid search query: malformed metadata key in %q", q)
			}
			field, metaKey, rest = "metadata", k, after[1:]
		} else {
			i := strings.IndexAny(rest, ":<>")
			if i <= 0 {
				return nil, fmt.Errorf("Invalid search query: %q", q)
			}
			field, rest = rest[:i], rest[i:]
		}
		op := ":"
		for _, o := range []string{">=", "<=", ">", "<", ":"} {
			if strings.HasPrefix(rest, o) {
				op, rest = o, rest[len(o):]
				break
			}
		}
		var value string
		if strings.HasPrefix(rest, "'") || strings.HasPrefix(rest, `"`) {
			var err error
			if value, rest, err = unquote(rest); err != nil {
				return nil, fmt.Errorf("Invalid search query: %v", err)
			}
		} else {
			value, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		rest = strings.TrimLeft(rest, " ")
		c, err := clause(field, metaKey, op, value)
		if err != nil {
			return nil, err
		}
		clauses = append(clauses, c)
	}
	if len(clauses) == 0 {
		return nil, errors.New("Invalid search query: empty")
	}
	return func(pi *intent) bool {
		for _, c := range clauses {
			if !c(pi) {
				return false
			}
		}
		return true
	}, nil
}

func clause(field, metaKey, op, value string) (func(*intent) bool, error) {
	switch field {
	case "metadata", "status", "currency":
		if op != ":" {
			return nil, fmt.Errorf("Invalid search query: %s only supports ':'", field)
		}
		return func(pi *intent) bool {
			switch field {
			case "metadata":
				return pi.Metadata[metaKey] == value
			case "status":
				return pi.Status == value
			}
			return pi.Currency == value
		}, nil
	case "created", "amount":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("Invalid search query: %s needs a number, got %q", field, value)
		}
		return func(pi *intent) bool {
			v := pi.Created
			if field == "amount" {
				v = pi.Amount
			}
			switch op {
			case ">":
				return v > n
			case ">=":
				return v >= n
			case "<":
				return v < n
			case "<=":
				return v <= n
			}
			return v == n
		}, nil
	}
	return nil, fmt.Errorf("stripefake: unsupported search field %q", field)
}

// unquote reads a '…' or "…" string with backslash escapes from the start of
// s and returns it and the rest.
func unquote(s string) (value, rest string, err error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", s, errors.New("expected a quoted string")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case s[0]:
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("unterminated string")
}
