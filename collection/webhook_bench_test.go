package collection_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/store"
	"billingd/billing/store/storetest"
	"billingd/collection"
	"billingd/collection/opn"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.DropTemplates()
	os.Exit(code)
}

// BenchmarkWebhookIngestion measures POST /webhooks/opn at concurrency 32:
// signature verified, event stored and deduplicated (one in ten is a
// replay), and in the same run the floor, a bare handler that only inserts
// the raw body. Run with: go test -run '^$' -bench WebhookIngestion -benchtime 1x ./collection
func BenchmarkWebhookIngestion(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect+"/verified", func(b *testing.B) { benchIngest(b, dialect, false) })
		b.Run(dialect+"/floor", func(b *testing.B) { benchIngest(b, dialect, true) })
	}
}

const benchSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="

func benchIngest(b *testing.B, dialect string, floor bool) {
	db := storetest.Open(b, dialect)
	p, err := opn.New(opn.Config{SecretKey: "skey_test_x", WebhookSecret: benchSecret})
	if err != nil {
		b.Fatal(err)
	}
	c := &collection.Collector{DB: db, Clock: billing.WallClock{}, Provider: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var h http.Handler = c.WebhookHandler(nil)
	var seq atomic.Int64
	if floor {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			pe := &collection.ProviderEvent{ID: fmt.Sprint("floor_", seq.Add(1)), Provider: "opn", Type: "x", Body: string(body), ReceivedAt: time.Now()}
			if _, err := db.NewInsert().Model(pe).Exec(r.Context()); err != nil {
				http.Error(w, err.Error(), 500)
			}
		})
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	key, _ := base64.StdEncoding.DecodeString(benchSecret)
	const n, workers = 2000, 32
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	b.ResetTimer()
	var lat []time.Duration
	for it := 0; it < b.N; it++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > n {
						return
					}
					id := i
					if i%10 == 0 {
						id = i - 1 // a replay of the previous event
					}
					body := fmt.Sprintf(`{"object":"event","id":"evnt_%d_%d","key":"charge.complete","data":{"object":"charge","id":"chrg_%d","status":"successful"}}`, it, id, id)
					ts := strconv.FormatInt(time.Now().Unix(), 10)
					mac := hmac.New(sha256.New, key)
					mac.Write([]byte(ts + "." + body))
					req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader([]byte(body)))
					req.Header.Set("Omise-Signature", hex.EncodeToString(mac.Sum(nil)))
					req.Header.Set("Omise-Signature-Timestamp", ts)
					start := time.Now()
					resp, err := client.Do(req)
					d := time.Since(start)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	if !floor {
		var stored int64
		stored, _ = db.NewSelect().Model((*collection.ProviderEvent)(nil)).Count(b.Context())
		if want := int64(b.N * (n - n/10)); stored != want {
			b.Fatalf("%d events stored, want %d (replays deduplicated)", stored, want)
		}
	}
	_ = store.Postgres
}
