// Package parallel runs independent pieces of work at once while keeping
// the order of those that belong together (one invoice's e-mails, one
// invoice's vouchers).
package parallel

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultN is how many calls Groups makes at once when its caller does not
// say (n < 1): most of the work waits on an SMTP server or a provider.
const DefaultN = 4

// Groups calls fn for each item, up to n calls at a time (n < 1: DefaultN).
// Items with the same key are a group: they run one after the other,
// in their order in items. After a call fails no new group starts; the
// running ones finish. Groups returns the errors joined, a panic in fn as
// an error.
func Groups[T any](n int, items []T, key func(T) string, fn func(T) error) error {
	if n < 1 {
		n = DefaultN
	}
	var order []string
	groups := map[string][]T{}
	for _, it := range items {
		k := key(it)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], it)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, n)
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(errs) > 0
	}
	report := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, k := range order {
		sem <- struct{}{}
		if failed() {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					report(fmt.Errorf("panic in the work of %s: %v", k, r))
				}
				<-sem
			}()
			for _, it := range groups[k] {
				if err := fn(it); err != nil {
					report(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
