package parallel_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"billingd/billing/parallel"
	"billingd/billing/parallel/paralleltest"
)

type item struct {
	key string
	n   int
}

func items(spec string) []item {
	var out []item
	for i, k := range strings.Fields(spec) {
		out = append(out, item{k, i})
	}
	return out
}

func key(it item) string { return it.key }

// TestGroups: n groups run at once (each call waits until n have started),
// never two of one group, and a group's items in order.
func TestGroups(t *testing.T) {
	var mu sync.Mutex
	seq := map[string][]int{}
	w := paralleltest.New(t, 3)
	err := parallel.Groups(3, items("a b a c d a e"), key, func(it item) error {
		mu.Lock()
		seq[it.key] = append(seq[it.key], it.n)
		mu.Unlock()
		w.Enter(it.key)
		defer w.Leave(it.key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seq["a"], []int{0, 2, 5}) || len(seq) != 5 {
		t.Errorf("ran %v", seq)
	}
}

// TestGroupsStopAfterError: after a failure no group starts; the rest of
// the failed group is skipped; a panic is an error.
func TestGroupsStopAfterError(t *testing.T) {
	var ran []string
	err := parallel.Groups(1, items("a a b c"), key, func(it item) error {
		ran = append(ran, fmt.Sprint(it.key, it.n))
		if it.n == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if err == nil || err.Error() != "boom" || !slices.Equal(ran, []string{"a0"}) {
		t.Errorf("err %v, ran %v", err, ran)
	}
	err = parallel.Groups(2, items("a"), key, func(item) error { panic("oops") })
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("panic: err %v", err)
	}
}
