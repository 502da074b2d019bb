package sandbox

import "testing"

func TestFees(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		amount, fee, vat, net int64
	}{
		{"SeedExample", 300, 152, 15, 133},
		{"Minimum", 200, 151, 15, 34},
		{"Maximum", 49_999, 400, 40, 49_559},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fee, vat, net := fees(tc.amount)
			if fee != tc.fee || vat != tc.vat || net != tc.net {
				t.Errorf("fees(%d) = %d/%d/%d, want %d/%d/%d", tc.amount, fee, vat, net, tc.fee, tc.vat, tc.net)
			}
		})
	}
}
