package store

import (
	"reflect"
	"testing"

	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/schema"

	"billingd/billing"
)

// TestEventRow keeps eventRow, which InsertEvents writes, in step with
// billing.Event: the same fields with the same bun tags.
func TestEventRow(t *testing.T) {
	want, got := reflect.TypeFor[billing.Event](), reflect.TypeFor[eventRow]()
	if want.NumField() != got.NumField() {
		t.Fatalf("billing.Event has %d fields, eventRow %d", want.NumField(), got.NumField())
	}
	for i := range want.NumField() {
		w, g := want.Field(i), got.Field(i)
		if w.Name != g.Name || w.Tag.Get("bun") != g.Tag.Get("bun") {
			t.Errorf("field %d: billing.Event has %s `bun:%q`, eventRow %s `bun:%q`", i, w.Name, w.Tag.Get("bun"), g.Name, g.Tag.Get("bun"))
		}
	}
}

// TestSQLText checks that text is quoted as the dialect quotes it.
func TestSQLText(t *testing.T) {
	for _, d := range []schema.Dialect{sqlitedialect.New(), pgdialect.New()} {
		gen := schema.NewQueryGen(d)
		for _, s := range []string{`{"a":"b"}`, `it's`, "日本語 \u2028", "bad \xff utf-8", ""} {
			got, err := sqlText(s).AppendQuery(gen, nil)
			if want := d.AppendString(nil, s); err != nil || string(got) != string(want) {
				t.Errorf("%s: %q appended as %s, want %s (%v)", d.Name(), s, got, want, err)
			}
		}
	}
}
