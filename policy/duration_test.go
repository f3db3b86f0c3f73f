package policy

import (
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"1h30m", 90 * time.Minute, false},
		{"0s", 0, false},
		{"5 minutes", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || d.D() != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v, error %v", tt.in, d.D(), err, tt.want, tt.wantErr)
		}
		if err == nil {
			b, _ := d.MarshalText()
			var back Duration
			if back.UnmarshalText(b) != nil || back != d {
				t.Errorf("round trip of %q gave %q", tt.in, b)
			}
		}
	}
}
