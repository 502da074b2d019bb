package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"time"

	"github.com/uptrace/bun"

	"billingd/billing"
	"billingd/billing/store"
)

// idempotencyKey is a stored POST response, replayed for a retry with the
// same Idempotency-Key and body.
type idempotencyKey struct {
	bun.BaseModel `bun:"table:idempotency_keys"`

	Key         string    `bun:"key,pk"`
	RequestHash string    `bun:"request_hash"`
	Status      int       `bun:"status"` // 0 while the first request runs
	Body        string    `bun:"body"`
	CreatedAt   time.Time `bun:"created_at"`
}

// abandonAfter is how long a reservation of a key may stay without a
// response before a retry may take it over (the first request crashed).
const abandonAfter = 2 * time.Minute

// bufferedWriter keeps the response so it can be stored.
type bufferedWriter struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
}

func (b *bufferedWriter) WriteHeader(code int) { b.code = code; b.ResponseWriter.WriteHeader(code) }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.buf.Write(p)
	return b.ResponseWriter.Write(p)
}

// idempotent makes POSTs with an Idempotency-Key safe to retry: the key is
// reserved before the handler runs, the response stored after it, and a
// retry with the same body gets the stored response. The same key with
// another body, or while the first request still runs, is a 409.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 255 {
			s.Error(w, r, billing.Invalid("Idempotency-Key", "The Idempotency-Key header must be at most 255 characters."))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			s.Error(w, r, billing.Errorf(billing.ETOOLARGE, "The request body exceeds %d bytes.", MaxBodyBytes))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		hash := hex.EncodeToString(sum[:])
		ctx := r.Context()

		var stored *idempotencyKey
		err = s.DB.InTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			k := new(idempotencyKey)
			err := s.DB.ForUpdate(tx.NewSelect().Model(k).Where("key = ?", key)).Scan(ctx)
			switch billing.ErrorCode(store.Translate(err)) {
			case billing.ENOTFOUND:
				_, err = tx.NewInsert().Model(&idempotencyKey{Key: key, RequestHash: hash, CreatedAt: time.Now().UTC()}).Exec(ctx)
				return err
			case "":
			default:
				return err
			}
			switch {
			case k.RequestHash != hash:
				return billing.Errorf(billing.ECONFLICT, "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)
			case k.Status != 0:
				stored = k
				return nil
			case time.Since(k.CreatedAt) < abandonAfter:
				return billing.Errorf(billing.ECONFLICT, "A request with Idempotency-Key '%s' is still being processed; retry later.", key)
			}
			_, err = tx.NewUpdate().Model(k).Set("created_at = ?", time.Now().UTC()).WherePK().Exec(ctx)
			return err
		})
		if err != nil {
			s.Error(w, r, err)
			return
		}
		if stored != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(stored.Status)
			io.WriteString(w, stored.Body)
			return
		}
		bw := &bufferedWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(bw, r)
		// Store the outcome even if the client has gone away.
		ctx = context.WithoutCancel(ctx)
		if bw.code >= 500 {
			// Let a retry run the request again.
			s.DB.NewDelete().Model((*idempotencyKey)(nil)).Where("key = ?", key).Exec(ctx) //nolint:errcheck
			return
		}
		_, err = s.DB.NewUpdate().Model((*idempotencyKey)(nil)).Set("status = ?", bw.code).Set("body = ?", bw.buf.String()).Where("key = ?", key).Exec(ctx)
		if err != nil {
			s.Logger.Error("store idempotent response", "key", key, "err", err)
		}
	})
}
