package billing

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

// ID prefixes, one per object type.
const (
	PrefixCustomer     = "cus_"
	PrefixPlan         = "plan_"
	PrefixSubscription = "sub_"
	PrefixSubItem      = "si_"
	PrefixInvoice      = "in_"
	PrefixLine         = "il_"
	PrefixCreditNote   = "cn_"
	PrefixCharge       = "ch_"
	PrefixEvent        = "evt_"
	PrefixTask         = "task_"
	PrefixBalanceTxn   = "cbtxn_"
	PrefixDocument     = "doc_"
	PrefixInvoiceItem  = "ii_"
)

// idEncoding is Crockford-style base32, whose alphabet sorts like the bytes.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

var idState struct {
	sync.Mutex
	last [10]byte
}

// NewID returns prefix followed by 16 characters that sort in creation order
// within a process (48 bits of wall-clock milliseconds, then 32 bits that are
// random in each new millisecond and counted up within one). Lists paginate by
// ID, so this keeps "newest first" stable and cheap.
func NewID(prefix string) string {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	idState.Lock()
	if string(b[:6]) <= string(idState.last[:6]) {
		b = idState.last
		n := binary.BigEndian.Uint32(b[6:]) + 1
		if n == 0 { // the counter wrapped: borrow the next millisecond
			ms := binary.BigEndian.Uint64(b[:8])>>16 + 1
			binary.BigEndian.PutUint64(b[:8], ms<<16)
		}
		binary.BigEndian.PutUint32(b[6:], n)
	} else {
		_, _ = rand.Read(b[6:])
		b[6] &= 0x7f // leave room to count up within the millisecond
	}
	idState.last = b
	idState.Unlock()
	return prefix + idEncoding.EncodeToString(b[:])
}

// NewToken returns an unguessable URL-safe secret of 160 random bits, used for
// payment page links and API keys.
func NewToken() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
