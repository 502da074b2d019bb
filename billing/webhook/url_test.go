package webhook_test

import (
	"context"
	"testing"
	"time"

	"billingd/billing"
	"billingd/billing/webhook"
)

func TestCheckURL(t *testing.T) {
	cases := []struct {
		name         string
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"OKPublicHTTPS", "https://93.184.216.34/hooks/billing", false, true},
		{"OKPublicHTTPWithPort", "http://93.184.216.34:8443/hook?x=1", false, true},
		{"OKPublicIPv6", "https://[2606:2800:220:1:248:1893:25c8:1946]/hook", false, true},
		{"OKLoopbackWhenAllowed", "http://127.0.0.1:9999/hook", true, true},
		{"ErrLoopback", "http://127.0.0.1:9999/hook", false, false},
		{"ErrLocalhostName", "http://localhost/hook", false, false},
		{"ErrIPv6Loopback", "http://[::1]/hook", false, false},
		{"ErrPrivate10", "https://10.0.0.5/hook", false, false},
		{"ErrPrivate192", "https://192.168.1.1/hook", false, false},
		{"ErrPrivate172", "https://172.16.0.1/hook", false, false},
		{"ErrLinkLocalMetadata", "http://169.254.169.254/latest/meta-data", false, false},
		{"ErrCGNAT", "http://100.64.0.1/hook", false, false},
		{"ErrUnspecified", "http://0.0.0.0/hook", false, false},
		{"ErrUniqueLocalIPv6", "http://[fd00::1]/hook", false, false},
		{"ErrIPv4MappedLoopback", "http://[::ffff:127.0.0.1]/hook", false, false},
		{"ErrScheme", "ftp://93.184.216.34/hook", true, false},
		{"ErrNoScheme", "93.184.216.34/hook", true, false},
		{"ErrNoHost", "https:///hook", true, false},
		{"ErrCredentials", "https://user:pw@93.184.216.34/hook", true, false},
		{"ErrEmpty", "", true, false},
		{"ErrUnresolvable", "https://no-such-host.invalid/hook", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.CheckURL(context.Background(), c.url, c.allowPrivate)
			if (err == nil) != c.ok {
				t.Fatalf("CheckURL(%q) = %v, want ok=%v", c.url, err, c.ok)
			}
			if err != nil && (billing.ErrorCode(err) != billing.EINVALID || billing.ErrorParam(err) != "url") {
				t.Fatalf("error %v does not name the url param", err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for elapsed, want := range map[time.Duration]time.Duration{0: time.Minute, 2 * time.Minute: 2 * time.Minute,
		5 * time.Hour: 5 * time.Hour, 30 * time.Hour: 12 * time.Hour} {
		if got := webhook.Backoff(elapsed); got != want {
			t.Errorf("Backoff(%v) = %v, want %v", elapsed, got, want)
		}
	}
	// Attempts come 1, 2, 4, 8 … minutes after the first, then every 12 h:
	// about 17 in the three days' window.
	at, n := time.Duration(0), 1
	for at < 72*time.Hour {
		at += webhook.Backoff(at)
		n++
	}
	if n < 15 || n > 20 {
		t.Fatalf("%d attempts within three days", n)
	}
}
