package policy

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func perSec(n float64) Rate { return Rate{N: n, Per: time.Second} }

// withBuiltins fills the feedback fields s does not set with the built-in
// defaults, min_rate and max_rate from s.Rate.
func withBuiltins(s Settings) Settings {
	if s.MinRate.IsZero() {
		s.MinRate = Rate{N: s.Rate.N / DefaultMinRateDivisor, Per: s.Rate.Per}
	}
	if s.MaxRate.IsZero() {
		s.MaxRate = Rate{N: s.Rate.N * DefaultMaxRateFactor, Per: s.Rate.Per}
	}
	if s.ThrottleCut == 0 {
		s.ThrottleCut = DefaultThrottleCut
	}
	if s.RecoveryStep == 0 {
		s.RecoveryStep = DefaultRecoveryStep
	}
	if s.RecoveryInterval == 0 {
		s.RecoveryInterval = Duration(DefaultRecoveryInterval)
	}
	if s.RetrySchedule == nil {
		s.RetrySchedule = DefaultRetrySchedule()
	}
	if s.MaxAge == 0 {
		s.MaxAge = Duration(DefaultMaxAge)
	}
	if s.MailboxFullAttempts == 0 {
		s.MailboxFullAttempts = DefaultMailboxFullAttempts
	}
	if s.ReviewThreshold == 0 {
		s.ReviewThreshold = DefaultReviewThreshold
	}
	if s.ReviewWindow == 0 {
		s.ReviewWindow = DefaultReviewWindow
	}
	return s
}

func mins(m ...int) []Duration {
	out := make([]Duration, len(m))
	for i, n := range m {
		out[i] = Duration(time.Duration(n) * time.Minute)
	}
	return out
}

// samplePolicy uses every documented key of the [policy] section.
const samplePolicy = `
[policy.default]
rate = "8/s"
burst = 16
max_connections = 3
max_messages_per_connection = 90
priority = 2
min_rate = "0.25/s"
max_rate = "16/s"
throttle_cut = 0.6
recovery_step = 0.2
recovery_interval = "15s"
retry_schedule = ["5m", "30m", "2h"]
max_age = "72h"
mailbox_full_attempts = 4
review_threshold = 0.1
review_window = 1000

[policy.providers.google]
domains = ["gmail.com", "googlemail.com"]
rate = "20/s"
burst = 30
max_connections = 6
max_messages_per_connection = 200
priority = 5
min_rate = "5/s"
max_rate = "40/s"
throttle_cut = 0.5
recovery_step = 0.05
recovery_interval = "30s"
retry_schedule = ["1m", "10m"]
max_age = "24h"
mailbox_full_attempts = 2
review_threshold = 0.02
review_window = 200

[policy.providers.acme]
domains = ["acme.example"]
rate = "30/m"

[policy.domains."centrum.sk"]
rate = "1/s"
burst = 2
max_connections = 1
max_messages_per_connection = 10
min_rate = "30/m"
max_rate = "2/s"
throttle_cut = 0.25
recovery_step = 1
recovery_interval = "1m"
retry_schedule = ["10m"]
max_age = "12h"
mailbox_full_attempts = 1
`

// file is the shape of config.toml as far as this package is concerned.
type file struct {
	Policy Config `toml:"policy"`
}

func TestConfigTOML(t *testing.T) {
	var f file
	md, err := toml.Decode(samplePolicy, &f)
	if err != nil {
		t.Fatalf("toml.Decode(sample) error = %v", err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Errorf("toml.Decode(sample) undecoded keys = %v, want none", u)
	}
	want := Config{
		Default: Settings{Rate: perSec(8), Burst: 16, MaxConnections: 3, MaxMessagesPerConnection: 90, Priority: 2,
			MinRate: perSec(0.25), MaxRate: perSec(16), ThrottleCut: 0.6, RecoveryStep: 0.2, RecoveryInterval: Duration(15 * time.Second),
			RetrySchedule: mins(5, 30, 120), MaxAge: Duration(72 * time.Hour), MailboxFullAttempts: 4,
			ReviewThreshold: 0.1, ReviewWindow: 1000},
		Providers: map[string]Provider{
			"google": {
				Settings: Settings{Rate: perSec(20), Burst: 30, MaxConnections: 6, MaxMessagesPerConnection: 200, Priority: 5,
					MinRate: perSec(5), MaxRate: perSec(40), ThrottleCut: 0.5, RecoveryStep: 0.05, RecoveryInterval: Duration(30 * time.Second),
					RetrySchedule: mins(1, 10), MaxAge: Duration(24 * time.Hour), MailboxFullAttempts: 2,
					ReviewThreshold: 0.02, ReviewWindow: 200},
				Domains: []string{"gmail.com", "googlemail.com"},
			},
			"acme": {Settings: Settings{Rate: Rate{30, time.Minute}}, Domains: []string{"acme.example"}},
		},
		Domains: map[string]Settings{
			"centrum.sk": {Rate: perSec(1), Burst: 2, MaxConnections: 1, MaxMessagesPerConnection: 10,
				MinRate: Rate{30, time.Minute}, MaxRate: perSec(2), ThrottleCut: 0.25, RecoveryStep: 1,
				RecoveryInterval: Duration(time.Minute), RetrySchedule: mins(10), MaxAge: Duration(12 * time.Hour),
				MailboxFullAttempts: 1},
		},
	}
	if !reflect.DeepEqual(f.Policy, want) {
		t.Errorf("toml.Decode(sample) = %+v, want %+v", f.Policy, want)
	}
	if err := f.Policy.Validate(); err != nil {
		t.Errorf("Validate(sample) = %v, want nil", err)
	}
	if err := f.Policy.WithDefaults().Validate(); err != nil {
		t.Errorf("WithDefaults().Validate(sample) = %v, want nil", err)
	}
}

func TestConfigTOMLUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"default", "[policy.default]\nratee = \"1/s\"\n", "policy.default.ratee"},
		{"provider", "[policy.providers.google]\ndomain = [\"gmail.com\"]\n", "policy.providers.google.domain"},
		{"domain", "[policy.domains.\"a.example\"]\nmin_rates = \"1/s\"\n", `policy.domains."a.example".min_rates`},
		{"feedback key", "[policy.default]\nretry_shedule = [\"5m\"]\n", "policy.default.retry_shedule"},
		{"section", "[policy]\nlimits = 1\n", "policy.limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f file
			md, err := toml.Decode(tt.in, &f)
			if err != nil {
				t.Fatalf("toml.Decode(%q) error = %v", tt.in, err)
			}
			var got []string
			for _, k := range md.Undecoded() {
				got = append(got, k.String())
			}
			if !slices.Contains(got, tt.want) {
				t.Errorf("toml.Decode(%q) undecoded = %q, want it to contain %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestConfigTOMLBadRate: a bad rate fails the decoding with the key and
// the line.
func TestConfigTOMLBadRate(t *testing.T) {
	var f file
	_, err := toml.Decode("[policy.providers.google]\ndomains = [\"gmail.com\"]\nrate = \"100/d\"\n", &f)
	if err == nil || !strings.Contains(err.Error(), "policy.providers.google.rate") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("toml.Decode(rate = \"100/d\") = %v, want an error naming policy.providers.google.rate at line 3", err)
	}
}

func TestRoute(t *testing.T) {
	c := Config{
		Default: Settings{Rate: perSec(8), MaxConnections: 3, Priority: 2},
		Providers: map[string]Provider{
			"google": {Settings: Settings{Rate: perSec(20), Burst: 40, MaxConnections: 6, Priority: 5},
				Domains: []string{"gmail.com", "googlemail.com"}},
			"microsoft": {Settings: Settings{MaxMessagesPerConnection: 30},
				Domains: []string{"hotmail.com", "outlook.com"}},
			"uk": {Settings: Settings{Rate: perSec(3)}, Domains: []string{"co.uk"}},
			"bt": {Domains: []string{"bt.co.uk"}},
		},
		Domains: map[string]Settings{
			"googlemail.com": {Rate: perSec(2)},
			"centrum.sk":     {MaxConnections: 1},
			"mx.outlook.com": {Burst: 7},
		},
	}
	def := withBuiltins
	tests := []struct {
		name   string
		domain string
		want   Route
	}{
		{"provider exact", "gmail.com", Route{"gmail.com", "google", "provider:google",
			def(Settings{Rate: perSec(20), Burst: 40, MaxConnections: 6, MaxMessagesPerConnection: 100, Priority: 5})}},
		{"provider parent", "mx.gmail.com", Route{"mx.gmail.com", "google", "provider:google",
			def(Settings{Rate: perSec(20), Burst: 40, MaxConnections: 6, MaxMessagesPerConnection: 100, Priority: 5})}},
		{"normalised", " GMail.COM. ", Route{"gmail.com", "google", "provider:google",
			def(Settings{Rate: perSec(20), Burst: 40, MaxConnections: 6, MaxMessagesPerConnection: 100, Priority: 5})}},
		{"not a parent", "notgmail.com", Route{"notgmail.com", "default", "domain:notgmail.com",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 3, MaxMessagesPerConnection: 100, Priority: 2})}},
		// The domain entry's rate comes without a burst: the burst is the
		// rate's default, not the provider's 40.
		{"domain entry in provider", "googlemail.com", Route{"googlemail.com", "google", "domain:googlemail.com",
			def(Settings{Rate: perSec(2), Burst: 2, MaxConnections: 6, MaxMessagesPerConnection: 100, Priority: 5})}},
		{"domain entry parent", "eu.googlemail.com", Route{"eu.googlemail.com", "google", "domain:googlemail.com",
			def(Settings{Rate: perSec(2), Burst: 2, MaxConnections: 6, MaxMessagesPerConnection: 100, Priority: 5})}},
		{"provider inherits default", "hotmail.com", Route{"hotmail.com", "microsoft", "provider:microsoft",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 3, MaxMessagesPerConnection: 30, Priority: 2})}},
		{"subdomain entry under provider", "mx.outlook.com", Route{"mx.outlook.com", "microsoft", "domain:mx.outlook.com",
			def(Settings{Rate: perSec(8), Burst: 7, MaxConnections: 3, MaxMessagesPerConnection: 30, Priority: 2})}},
		{"domain entry without provider", "centrum.sk", Route{"centrum.sk", "default", "domain:centrum.sk",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 1, MaxMessagesPerConnection: 100, Priority: 2})}},
		{"unknown", "example.org", Route{"example.org", "default", "domain:example.org",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 3, MaxMessagesPerConnection: 100, Priority: 2})}},
		{"longest provider match", "mail.bt.co.uk", Route{"mail.bt.co.uk", "bt", "provider:bt",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 3, MaxMessagesPerConnection: 100, Priority: 2})}},
		{"shorter provider match", "mail.sky.co.uk", Route{"mail.sky.co.uk", "uk", "provider:uk",
			def(Settings{Rate: perSec(3), Burst: 3, MaxConnections: 3, MaxMessagesPerConnection: 100, Priority: 2})}},
		{"idna", "BÜCHER.example", Route{"xn--bcher-kva.example", "default", "domain:xn--bcher-kva.example",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 3, MaxMessagesPerConnection: 100, Priority: 2})}},
		{"empty", "", Route{"", "default", "domain:",
			def(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 3, MaxMessagesPerConnection: 100, Priority: 2})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Route(tt.domain); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Route(%q) = %+v, want %+v", tt.domain, got, tt.want)
			}
		})
	}
}

func TestRouteZeroConfig(t *testing.T) {
	got := Config{}.Route("gmail.com")
	want := Route{"gmail.com", "default", "domain:gmail.com",
		withBuiltins(Settings{Rate: DefaultRate, Burst: 10, MaxConnections: DefaultMaxConnections,
			MaxMessagesPerConnection: DefaultMaxMessagesPerConnection, Priority: DefaultPriority})}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Config{}.Route(%q) = %+v, want %+v", "gmail.com", got, want)
	}
}

func TestRouteSettingsResolved(t *testing.T) {
	c := DefaultConfig()
	for _, d := range []string{"gmail.com", "mx.yahoo.com", "centrum.sk", "example.org", "azet.sk", "icloud.com"} {
		s := c.Route(d).Settings
		if s.Rate.IsZero() || s.Burst < 1 || s.MaxConnections < 1 || s.MaxMessagesPerConnection < 1 || s.Priority < 1 ||
			s.MinRate.IsZero() || s.MaxRate.IsZero() || s.ThrottleCut == 0 || s.RecoveryStep == 0 || s.RecoveryInterval == 0 ||
			len(s.RetrySchedule) == 0 || s.MaxAge == 0 || s.MailboxFullAttempts == 0 || s.ReviewThreshold == 0 || s.ReviewWindow == 0 {
			t.Errorf("DefaultConfig().Route(%q).Settings = %+v, want no zero field", d, s)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v, want nil", err)
	}
	tests := []struct {
		domain, queue, key string
	}{
		{"gmail.com", "google", "provider:google"},
		{"googlemail.com", "google", "provider:google"},
		{"hotmail.com", "microsoft", "provider:microsoft"},
		{"outlook.com", "microsoft", "provider:microsoft"},
		{"live.com", "microsoft", "provider:microsoft"},
		{"msn.com", "microsoft", "provider:microsoft"},
		{"yahoo.com", "yahoo", "provider:yahoo"},
		{"aol.com", "yahoo", "provider:yahoo"},
		{"ymail.com", "yahoo", "provider:yahoo"},
		{"icloud.com", "apple", "provider:apple"},
		{"me.com", "apple", "provider:apple"},
		{"mac.com", "apple", "provider:apple"},
		{"seznam.cz", "seznam", "provider:seznam"},
		{"email.cz", "seznam", "provider:seznam"},
		{"post.cz", "seznam", "provider:seznam"},
		{"centrum.sk", "centrum", "provider:centrum"},
		{"centrum.cz", "centrum", "provider:centrum"},
		{"atlas.sk", "centrum", "provider:centrum"},
		{"azet.sk", "azet", "provider:azet"},
		{"zoznam.sk", "zoznam", "provider:zoznam"},
		{"stonline.sk", "default", "domain:stonline.sk"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got := c.Route(tt.domain)
			if got.Queue != tt.queue || got.Key != tt.key {
				t.Errorf("DefaultConfig().Route(%q) = queue %q key %q, want %q %q", tt.domain, got.Queue, got.Key, tt.queue, tt.key)
			}
		})
	}
	// Each call returns a fresh value.
	c.Providers["google"] = Provider{Domains: []string{"changed.example"}}
	if got := DefaultConfig().Route("gmail.com").Queue; got != "google" {
		t.Errorf("DefaultConfig() after modifying an earlier result: Route(gmail.com).Queue = %q, want google", got)
	}
}

func TestQueues(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want map[string]int
	}{
		{"zero", Config{}, map[string]int{"default": 1}},
		{"inherit default", Config{
			Default:   Settings{Priority: 3},
			Providers: map[string]Provider{"a": {Domains: []string{"a.example"}}, "b": {Settings: Settings{Priority: 6}, Domains: []string{"b.example"}}},
		}, map[string]int{"default": 3, "a": 3, "b": 6}},
		{"builtin", DefaultConfig(), map[string]int{"default": 1, "google": 1, "microsoft": 1, "yahoo": 1, "apple": 1,
			"seznam": 1, "centrum": 1, "azet": 1, "zoznam": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Queues(); !maps.Equal(got, tt.want) {
				t.Errorf("Queues() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	base := DefaultConfig()
	var f file
	in := `
[policy.default]
max_connections = 8

[policy.providers.google]
rate = "40/s"

[policy.providers.yahoo]
domains = ["yahoo.com", "yahoo.co.uk"]
priority = 3

[policy.providers.acme]
domains = ["acme.example"]
rate = "1/s"

[policy.domains."gmail.com"]
max_connections = 2
`
	if _, err := toml.Decode(in, &f); err != nil {
		t.Fatal(err)
	}
	m := f.Policy.WithDefaults()
	if err := m.Validate(); err != nil {
		t.Fatalf("merged Validate() = %v, want nil", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"default field set", m.Default.MaxConnections, 8},
		{"default field kept", m.Default.Rate, DefaultRate},
		{"provider field replaced", m.Providers["google"].Rate, perSec(40)},
		{"provider field kept", m.Providers["google"].MaxMessagesPerConnection, base.Providers["google"].MaxMessagesPerConnection},
		{"provider domains kept", m.Providers["google"].Domains, base.Providers["google"].Domains},
		{"provider domains replaced", m.Providers["yahoo"].Domains, []string{"yahoo.com", "yahoo.co.uk"}},
		{"provider priority", m.Providers["yahoo"].Priority, 3},
		{"provider added", m.Providers["acme"], Provider{Settings: Settings{Rate: perSec(1)}, Domains: []string{"acme.example"}}},
		{"others kept", m.Providers["azet"], base.Providers["azet"]},
		{"aol left yahoo", m.Route("aol.com").Queue, "default"},
		{"new yahoo domain", m.Route("yahoo.co.uk").Key, "provider:yahoo"},
		{"domain entry", m.Route("gmail.com").Key, "domain:gmail.com"},
		{"domain entry inherits merged provider", m.Route("gmail.com").Settings.Rate, perSec(40)},
		{"domain entry own field", m.Route("gmail.com").Settings.MaxConnections, 2},
		{"base untouched", base.Providers["google"].Rate, DefaultConfig().Providers["google"].Rate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("Merge: %s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}

	// A rate without a burst drops the base's burst.
	b := Config{Providers: map[string]Provider{"p": {Settings: Settings{Rate: perSec(100), Burst: 100}, Domains: []string{"p.example"}}}}
	o := Config{Providers: map[string]Provider{"p": {Settings: Settings{Rate: perSec(2)}}}}
	if got := b.Merge(o).Route("p.example").Settings.Burst; got != 2 {
		t.Errorf("Merge(rate without burst): Route(p.example).Settings.Burst = %d, want 2", got)
	}
	// The merge does not alias the inputs' slices.
	mm := b.Merge(Config{})
	mm.Providers["p"].Domains[0] = "q.example"
	if b.Providers["p"].Domains[0] != "p.example" {
		t.Errorf("Merge aliases the base's domain list")
	}
}

func TestValidate(t *testing.T) {
	prov := func(s Settings, domains ...string) Provider { return Provider{Settings: s, Domains: domains} }
	tests := []struct {
		name    string
		c       Config
		wantErr []string // each must appear
	}{
		{"zero", Config{}, nil},
		{"builtin", DefaultConfig(), nil},
		{"bad rate", Config{Providers: map[string]Provider{"google": prov(Settings{Rate: Rate{N: -1, Per: time.Second}}, "gmail.com")}},
			[]string{"policy.providers.google.rate: must be > 0"}},
		{"bad period", Config{Default: Settings{Rate: Rate{N: 1, Per: time.Millisecond}}},
			[]string{"policy.default.rate: period"}},
		{"negative burst", Config{Domains: map[string]Settings{"centrum.sk": {Burst: -1}}},
			[]string{`policy.domains."centrum.sk".burst: -1`}},
		{"negative connections", Config{Default: Settings{MaxConnections: -2}},
			[]string{"policy.default.max_connections"}},
		{"negative messages", Config{Providers: map[string]Provider{"a": prov(Settings{MaxMessagesPerConnection: -1}, "a.example")}},
			[]string{"policy.providers.a.max_messages_per_connection"}},
		{"negative priority", Config{Default: Settings{Priority: -1}},
			[]string{"policy.default.priority"}},
		{"priority on domain", Config{Domains: map[string]Settings{"a.example": {Priority: 2}}},
			[]string{`policy.domains."a.example".priority: a domain has no queue`}},
		{"domain in two providers", Config{Providers: map[string]Provider{
			"google": prov(Settings{}, "gmail.com"), "mine": prov(Settings{}, "example.com", "gmail.com")}},
			[]string{"policy.providers.google.domains and policy.providers.mine.domains: gmail.com is in both"}},
		{"domain twice", Config{Providers: map[string]Provider{"a": prov(Settings{}, "a.example", "a.example")}},
			[]string{"policy.providers.a.domains[1]: a.example is listed twice"}},
		{"no domains", Config{Providers: map[string]Provider{"a": {}}},
			[]string{"policy.providers.a.domains: list at least one"}},
		{"bad queue name", Config{Providers: map[string]Provider{"Google": prov(Settings{}, "gmail.com")}},
			[]string{`policy.providers.Google: provider name "Google"`}},
		{"queue name with dot", Config{Providers: map[string]Provider{"g.mail": prov(Settings{}, "gmail.com")}},
			[]string{`policy.providers."g.mail": provider name`}},
		{"review reserved", Config{Providers: map[string]Provider{"review": prov(Settings{}, "x.example")}},
			[]string{`policy.providers.review: provider name "review" is reserved`}},
		{"default reserved", Config{Providers: map[string]Provider{"default": prov(Settings{}, "x.example")}},
			[]string{`policy.providers.default: provider name "default" is reserved`}},
		{"upper-case domain", Config{Providers: map[string]Provider{"a": prov(Settings{}, "Gmail.com")}},
			[]string{`policy.providers.a.domains[0]: "Gmail.com": write it normalised, "gmail.com"`}},
		{"single label", Config{Providers: map[string]Provider{"a": prov(Settings{}, "com")}},
			[]string{`policy.providers.a.domains[0]: "com": want a domain of two labels`}},
		{"bad label", Config{Domains: map[string]Settings{"a_b.example": {}}},
			[]string{`policy.domains."a_b.example": "a_b.example" is not a domain name`}},
		{"label with hyphen", Config{Domains: map[string]Settings{"-a.example": {}}},
			[]string{`policy.domains."-a.example"`}},
		{"empty domain", Config{Domains: map[string]Settings{"": {}}},
			[]string{`policy.domains."": "" is not a domain name`}},
		{"several", Config{Default: Settings{Burst: -1}, Domains: map[string]Settings{"x.example": {MaxConnections: -1}}},
			[]string{"policy.default.burst", `policy.domains."x.example".max_connections`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("Validate() = %v, want errors %q", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestValidateMergedConflict: a user provider claiming a built-in domain
// is an error that names both providers.
func TestValidateMergedConflict(t *testing.T) {
	c := Config{Providers: map[string]Provider{"mygoogle": {Domains: []string{"gmail.com"}}}}.WithDefaults()
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "policy.providers.google.domains and policy.providers.mygoogle.domains") {
		t.Errorf("Validate() = %v, want an error naming google and mygoogle", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 1 {
		t.Errorf("Validate() = %v, want exactly one joined error", err)
	}
}

func BenchmarkRoute(b *testing.B) {
	c := DefaultConfig().Merge(Config{Domains: map[string]Settings{"centrum.sk": {MaxConnections: 1}}})
	domains := []string{"gmail.com", "mx.yahoo.com", "centrum.sk", "example.org", "zoznam.sk"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = c.Route(domains[i%len(domains)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

// TestConfigTOMLBadDuration: a bad delay in retry_schedule fails the
// decoding with the key and the line.
func TestConfigTOMLBadDuration(t *testing.T) {
	var f file
	_, err := toml.Decode("[policy.providers.google]\ndomains = [\"gmail.com\"]\nretry_schedule = [\"5m\", \"soon\"]\n", &f)
	if err == nil || !strings.Contains(err.Error(), "policy.providers.google.retry_schedule") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("toml.Decode(retry_schedule = [\"5m\", \"soon\"]) = %v, want an error naming policy.providers.google.retry_schedule at line 3", err)
	}
}

// TestRouteFeedbackSettings: every feedback field inherits on its own,
// domain -> provider -> default -> built-in; the built-in bounds follow
// the resolved rate.
func TestRouteFeedbackSettings(t *testing.T) {
	c := Config{
		Default: Settings{ThrottleCut: 0.7, MaxAge: Duration(time.Hour), ReviewWindow: 100},
		Providers: map[string]Provider{
			"google": {Settings: Settings{Rate: perSec(20), MinRate: perSec(4), RecoveryStep: 0.3,
				RetrySchedule: mins(1, 2), ReviewThreshold: 0.2}, Domains: []string{"gmail.com", "googlemail.com"}},
			"slow": {Settings: Settings{Rate: Rate{N: 0.2, Per: time.Hour}}, Domains: []string{"slow.example"}},
		},
		Domains: map[string]Settings{
			"googlemail.com": {Rate: perSec(8), MaxRate: perSec(9), MailboxFullAttempts: 5, RecoveryInterval: Duration(time.Minute)},
			"x.example":      {Rate: perSec(3)},
		},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	tests := []struct {
		domain string
		want   Settings
	}{
		{"gmail.com", withBuiltins(Settings{Rate: perSec(20), Burst: 20, MaxConnections: 4, MaxMessagesPerConnection: 100, Priority: 1,
			MinRate: perSec(4), MaxRate: perSec(200), ThrottleCut: 0.7, RecoveryStep: 0.3, RetrySchedule: mins(1, 2),
			MaxAge: Duration(time.Hour), ReviewThreshold: 0.2, ReviewWindow: 100})},
		// The domain entry's own rate and max_rate; min_rate, step and
		// schedule from the provider; cut and max_age from the default.
		{"googlemail.com", withBuiltins(Settings{Rate: perSec(8), Burst: 8, MaxConnections: 4, MaxMessagesPerConnection: 100, Priority: 1,
			MinRate: perSec(4), MaxRate: perSec(9), ThrottleCut: 0.7, RecoveryStep: 0.3, RecoveryInterval: Duration(time.Minute),
			RetrySchedule: mins(1, 2), MaxAge: Duration(time.Hour), MailboxFullAttempts: 5, ReviewThreshold: 0.2, ReviewWindow: 100})},
		// Built-in bounds from the domain's own rate.
		{"x.example", withBuiltins(Settings{Rate: perSec(3), Burst: 3, MaxConnections: 4, MaxMessagesPerConnection: 100, Priority: 1,
			MinRate: perSec(0.3), MaxRate: perSec(30), ThrottleCut: 0.7, MaxAge: Duration(time.Hour), ReviewWindow: 100})},
		{"example.org", withBuiltins(Settings{Rate: DefaultRate, Burst: 10, MaxConnections: 4, MaxMessagesPerConnection: 100, Priority: 1,
			ThrottleCut: 0.7, MaxAge: Duration(time.Hour), ReviewWindow: 100})},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			if got := c.Route(tt.domain).Settings; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Route(%q).Settings = %+v, want %+v", tt.domain, got, tt.want)
			}
		})
	}
	// 0.2/h / 10 would be slower than one message a day: the floor is one
	// message every MaxRateInterval.
	got := c.Route("slow.example").Settings
	if iv := got.MinRate.Interval(); iv != MaxRateInterval || got.MinRate.check() != nil {
		t.Errorf("Route(slow.example).Settings.MinRate = %v (one every %v), want one every %v", got.MinRate, iv, MaxRateInterval)
	}
}

func TestDefaultBounds(t *testing.T) {
	slowest := 1.0 / 24 // a float64, multiplied at run time as defaultMaxRate does
	tests := []struct {
		name           string
		rate, min, max Rate
	}{
		{"plain", perSec(10), perSec(1), perSec(100)},
		{"per minute", Rate{30, time.Minute}, Rate{3, time.Minute}, Rate{300, time.Minute}},
		{"floor", Rate{N: 0.2, Per: time.Hour}, Rate{N: 1.0 / 24, Per: time.Hour}, Rate{N: 2, Per: time.Hour}},
		{"slowest", Rate{N: 1.0 / 24, Per: time.Hour}, Rate{N: 1.0 / 24, Per: time.Hour}, Rate{N: slowest * 10, Per: time.Hour}},
		{"near the ceiling", perSec(MaxRatePerSecond / 4), perSec(MaxRatePerSecond / 40), perSec(MaxRatePerSecond)},
		{"ceiling", perSec(MaxRatePerSecond), perSec(MaxRatePerSecond / 10), perSec(MaxRatePerSecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultMinRate(tt.rate); got != tt.min {
				t.Errorf("defaultMinRate(%v) = %v, want %v", tt.rate, got, tt.min)
			}
			if got := defaultMaxRate(tt.rate); got != tt.max {
				t.Errorf("defaultMaxRate(%v) = %v, want %v", tt.rate, got, tt.max)
			}
		})
	}
}

// TestRouteScheduleShared: Route does not copy the schedule (it allocates
// only the key); Merge and DefaultRetrySchedule do.
func TestRouteScheduleShared(t *testing.T) {
	s := DefaultRetrySchedule()
	s[0] = 1
	if got := (Config{}).Route("a.example").Settings.RetrySchedule; !reflect.DeepEqual(got, mins(5, 15, 60, 240)) {
		t.Errorf("Config{}.Route(a.example).Settings.RetrySchedule = %v after modifying DefaultRetrySchedule(), want 5m 15m 1h 4h", got)
	}
	c := DefaultConfig()
	if n := testing.AllocsPerRun(100, func() { _ = c.Route("gmail.com") }); n > 1 {
		t.Errorf("Route allocations = %v, want <= 1 (the key)", n)
	}
}

func TestValidateFeedback(t *testing.T) {
	prov := func(s Settings, domains ...string) Provider { return Provider{Settings: s, Domains: domains} }
	tests := []struct {
		name    string
		c       Config
		wantErr []string // each must appear
	}{
		{"all set", Config{Default: Settings{Rate: perSec(10), MinRate: perSec(10), MaxRate: perSec(10), ThrottleCut: 0.99,
			RecoveryStep: 1, RecoveryInterval: Duration(time.Second), RetrySchedule: mins(1), MaxAge: Duration(time.Minute),
			MailboxFullAttempts: 1, ReviewThreshold: 1, ReviewWindow: MaxReviewWindow}}, nil},
		{"bad min_rate", Config{Default: Settings{MinRate: Rate{N: -1, Per: time.Second}}},
			[]string{"policy.default.min_rate: must be > 0"}},
		{"bad max_rate", Config{Default: Settings{MaxRate: Rate{N: 1, Per: 2 * time.Second}}},
			[]string{"policy.default.max_rate: period"}},
		{"min above rate", Config{Providers: map[string]Provider{"google": prov(Settings{Rate: perSec(5), MinRate: perSec(6)}, "gmail.com")}},
			[]string{"policy.providers.google.min_rate: 6/s is above the rate 5/s; want min_rate <= rate"}},
		{"max below inherited rate", Config{Default: Settings{Rate: perSec(5)}, Domains: map[string]Settings{"a.example": {MaxRate: perSec(4)}}},
			[]string{`policy.domains."a.example".max_rate: 4/s is below the rate 5/s (inherited); want rate <= max_rate`}},
		{"rate below inherited min", Config{Default: Settings{MinRate: perSec(3)},
			Providers: map[string]Provider{"azet": prov(Settings{Rate: perSec(2)}, "azet.sk")}},
			[]string{"policy.providers.azet.rate: 2/s is below min_rate 3/s (inherited); want min_rate <= rate"}},
		{"rate above inherited max", Config{Providers: map[string]Provider{"google": prov(Settings{MaxRate: perSec(20)}, "gmail.com")},
			Domains: map[string]Settings{"gmail.com": {Rate: perSec(25)}}},
			[]string{`policy.domains."gmail.com".rate: 25/s is above max_rate 20/s (inherited); want rate <= max_rate`}},
		{"default max below built-in rate", Config{Default: Settings{MaxRate: perSec(8)}},
			[]string{"policy.default.max_rate: 8/s is below the rate 10/s (inherited)"}},
		{"equal in other units", Config{Default: Settings{Rate: Rate{60, time.Minute}, MinRate: perSec(1), MaxRate: Rate{3600, time.Hour}}}, nil},
		{"throttle_cut 1", Config{Default: Settings{ThrottleCut: 1}},
			[]string{"policy.default.throttle_cut: 1 must be > 0 and < 1"}},
		{"throttle_cut negative", Config{Providers: map[string]Provider{"google": prov(Settings{ThrottleCut: -0.5}, "gmail.com")}},
			[]string{"policy.providers.google.throttle_cut: -0.5 must be > 0 and < 1"}},
		{"recovery_step above 1", Config{Domains: map[string]Settings{"a.example": {RecoveryStep: 1.5}}},
			[]string{`policy.domains."a.example".recovery_step: 1.5 must be > 0 and <= 1`}},
		{"recovery_interval short", Config{Default: Settings{RecoveryInterval: Duration(500 * time.Millisecond)}},
			[]string{"policy.default.recovery_interval: 500ms must be >= 1s"}},
		{"recovery_interval negative", Config{Default: Settings{RecoveryInterval: Duration(-time.Second)}},
			[]string{"policy.default.recovery_interval: -1s"}},
		{"empty schedule", Config{Providers: map[string]Provider{"google": prov(Settings{RetrySchedule: []Duration{}}, "gmail.com")}},
			[]string{"policy.providers.google.retry_schedule: list at least one delay"}},
		{"zero delay", Config{Default: Settings{RetrySchedule: []Duration{Duration(time.Minute), 0}}},
			[]string{"policy.default.retry_schedule[1]: 0s must be > 0"}},
		{"negative max_age", Config{Default: Settings{MaxAge: Duration(-time.Hour)}},
			[]string{"policy.default.max_age: -1h0m0s must be > 0"}},
		{"negative attempts", Config{Domains: map[string]Settings{"a.example": {MailboxFullAttempts: -1}}},
			[]string{`policy.domains."a.example".mailbox_full_attempts: -1 must be >= 1`}},
		{"review_threshold above 1", Config{Default: Settings{ReviewThreshold: 5}},
			[]string{"policy.default.review_threshold: 5 must be > 0 and <= 1"}},
		{"review_threshold on domain", Config{Domains: map[string]Settings{"a.example": {ReviewThreshold: 0.1}}},
			[]string{`policy.domains."a.example".review_threshold: a domain has no queue of its own`}},
		{"review_window too big", Config{Providers: map[string]Provider{"google": prov(Settings{ReviewWindow: MaxReviewWindow + 1}, "gmail.com")}},
			[]string{"policy.providers.google.review_window: 100001 must be >= 1 and <= 100000"}},
		{"review_window negative", Config{Default: Settings{ReviewWindow: -1}},
			[]string{"policy.default.review_window: -1"}},
		{"review_window on domain", Config{Domains: map[string]Settings{"a.example": {ReviewWindow: 10}}},
			[]string{`policy.domains."a.example".review_window: a domain has no queue of its own`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("Validate() = %v, want errors %q", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestValidateBoundsOnce: an inconsistent bound is reported once, at the
// level that sets it, not again at every level inheriting it.
func TestValidateBoundsOnce(t *testing.T) {
	c := Config{
		Providers: map[string]Provider{"google": {Settings: Settings{MaxRate: perSec(5)}, Domains: []string{"gmail.com"}}},
		Domains:   map[string]Settings{"gmail.com": {MaxConnections: 2}, "mx.gmail.com": {Burst: 3}},
	}
	err := c.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 1 || !strings.Contains(err.Error(), "policy.providers.google.max_rate") {
		t.Errorf("Validate() = %v, want exactly one error, naming policy.providers.google.max_rate", err)
	}
}

func TestMergeFeedback(t *testing.T) {
	base := DefaultConfig()
	over := Config{
		Default: Settings{ThrottleCut: 0.6},
		Providers: map[string]Provider{
			"google": {Settings: Settings{MinRate: perSec(2), RetrySchedule: mins(2, 4), ReviewThreshold: 0.01}},
		},
		Domains: map[string]Settings{"centrum.sk": {MaxRate: perSec(3), MailboxFullAttempts: 1}},
	}
	m := base.Merge(over)
	if err := m.Validate(); err != nil {
		t.Fatalf("merged Validate() = %v, want nil", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"default field set", m.Default.ThrottleCut, 0.6},
		{"default field kept", m.Default.RecoveryStep, float64(DefaultRecoveryStep)},
		{"default schedule kept", m.Default.RetrySchedule, DefaultRetrySchedule()},
		{"provider schedule", m.Providers["google"].RetrySchedule, mins(2, 4)},
		{"provider min", m.Providers["google"].MinRate, perSec(2)},
		{"route min", m.Route("gmail.com").Settings.MinRate, perSec(2)},
		{"route max built-in", m.Route("gmail.com").Settings.MaxRate, perSec(100)},
		{"route cut from default", m.Route("gmail.com").Settings.ThrottleCut, 0.6},
		{"route threshold", m.Route("gmail.com").Settings.ReviewThreshold, 0.01},
		{"domain entry", m.Route("centrum.sk").Settings.MaxRate, perSec(3)},
		{"domain entry attempts", m.Route("centrum.sk").Settings.MailboxFullAttempts, 1},
		{"domain entry min from provider rate", m.Route("centrum.sk").Settings.MinRate, perSec(0.2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("Merge: %s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	// No aliasing of schedules between the inputs and the result.
	m.Providers["google"].RetrySchedule[0] = 1
	m.Default.RetrySchedule[0] = 1
	if over.Providers["google"].RetrySchedule[0] != Duration(2*time.Minute) || base.Default.RetrySchedule[0] != Duration(5*time.Minute) {
		t.Errorf("Merge aliases a retry_schedule of its inputs")
	}
}

func TestDefaultConfigFeedback(t *testing.T) {
	c := DefaultConfig()
	for _, d := range []string{"gmail.com", "hotmail.com", "centrum.sk", "example.org"} {
		s := c.Route(d).Settings
		want := withBuiltins(Settings{Rate: s.Rate, Burst: s.Burst, MaxConnections: s.MaxConnections,
			MaxMessagesPerConnection: s.MaxMessagesPerConnection, Priority: s.Priority})
		if !reflect.DeepEqual(s, want) {
			t.Errorf("DefaultConfig().Route(%q).Settings = %+v, want the built-in feedback defaults %+v", d, s, want)
		}
	}
}
