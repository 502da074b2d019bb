package billing

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestInvoiceJSON checks that the hand-written Invoice.MarshalJSON writes
// exactly what encoding/json writes for the struct (with "object" first),
// over invoices whose every field is random: strings that need escaping,
// nil and set pointers, nil and empty slices, times in several zones. A field
// added to Invoice or InvoiceLine and not to MarshalJSON fails it.
func TestInvoiceJSON(t *testing.T) {
	type alias Invoice
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var in Invoice
		fillRandom(rnd, reflect.ValueOf(&in).Elem(), 0)
		got, err := in.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(struct {
			Object string `json:"object"`
			alias
		}{"invoice", alias(in)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("invoice %d:\n got %s\nwant %s", i, got, want)
		}
		// Through encoding/json (the API's path) it is unchanged too.
		if viaJSON, err := json.Marshal(&in); err != nil || !bytes.Equal(viaJSON, want) {
			t.Fatalf("invoice %d through json.Marshal: %v\n got %s\nwant %s", i, err, viaJSON, want)
		}
	}
	bad := Invoice{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := bad.MarshalJSON(); err == nil {
		t.Error("a year beyond 9999 was encoded; encoding/json refuses it")
	}
}

var randomRunes = []rune("aZ09 _-.:/\"\\<>&'\n\r\t\b\f\x00\x01\x1f\x7fé顧客ｶﾅ😀\u2028\u2029\ufffd")

// fillRandom sets every exported field of v (recursively) to a random value.
func fillRandom(rnd *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		var rs []rune
		for range rnd.IntN(12) {
			rs = append(rs, randomRunes[rnd.IntN(len(randomRunes))])
		}
		s := string(rs)
		if rnd.IntN(10) == 0 {
			s += "\xff\xfe" // invalid UTF-8
		}
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		v.SetInt(rnd.Int64N(1<<40) - 1<<39)
	case reflect.Bool:
		v.SetBool(rnd.IntN(2) == 0)
	case reflect.Pointer:
		if depth > 3 || rnd.IntN(3) == 0 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fillRandom(rnd, v.Elem(), depth+1)
	case reflect.Slice:
		if depth > 3 || rnd.IntN(4) == 0 {
			return
		}
		n := rnd.IntN(4)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fillRandom(rnd, v.Index(i), depth+1)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			zones := []*time.Location{time.UTC, time.FixedZone("JST", 9*3600), time.FixedZone("odd", -(3*3600 + 30*60))}
			t := time.Unix(rnd.Int64N(253402300799), rnd.Int64N(2)*rnd.Int64N(1e9)).In(zones[rnd.IntN(len(zones))])
			v.Set(reflect.ValueOf(t))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillRandom(rnd, v.Field(i), depth)
			}
		}
	}
}
