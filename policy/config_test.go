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

// samplePolicy uses every documented key of the [policy] section.
const samplePolicy = `
[policy.default]
rate = "8/s"
burst = 16
max_connections = 3
max_messages_per_connection = 90
priority = 2

[policy.providers.google]
domains = ["gmail.com", "googlemail.com"]
rate = "20/s"
burst = 30
max_connections = 6
max_messages_per_connection = 200
priority = 5

[policy.providers.acme]
domains = ["acme.example"]
rate = "30/m"

[policy.domains."centrum.sk"]
rate = "1/s"
burst = 2
max_connections = 1
max_messages_per_connection = 10
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
		Default: Settings{Rate: perSec(8), Burst: 16, MaxConnections: 3, MaxMessagesPerConnection: 90, Priority: 2},
		Providers: map[string]Provider{
			"google": {
				Settings: Settings{Rate: perSec(20), Burst: 30, MaxConnections: 6, MaxMessagesPerConnection: 200, Priority: 5},
				Domains:  []string{"gmail.com", "googlemail.com"},
			},
			"acme": {Settings: Settings{Rate: Rate{30, time.Minute}}, Domains: []string{"acme.example"}},
		},
		Domains: map[string]Settings{
			"centrum.sk": {Rate: perSec(1), Burst: 2, MaxConnections: 1, MaxMessagesPerConnection: 10},
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
		{"domain", "[policy.domains.\"a.example\"]\nmin_rate = \"1/s\"\n", `policy.domains."a.example".min_rate`},
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
	def := func(s Settings) Settings { return s }
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
			if got := c.Route(tt.domain); got != tt.want {
				t.Errorf("Route(%q) = %+v, want %+v", tt.domain, got, tt.want)
			}
		})
	}
}

func TestRouteZeroConfig(t *testing.T) {
	got := Config{}.Route("gmail.com")
	want := Route{"gmail.com", "default", "domain:gmail.com",
		Settings{Rate: DefaultRate, Burst: 10, MaxConnections: DefaultMaxConnections,
			MaxMessagesPerConnection: DefaultMaxMessagesPerConnection, Priority: DefaultPriority}}
	if got != want {
		t.Errorf("Config{}.Route(%q) = %+v, want %+v", "gmail.com", got, want)
	}
}

func TestRouteSettingsResolved(t *testing.T) {
	c := DefaultConfig()
	for _, d := range []string{"gmail.com", "mx.yahoo.com", "centrum.sk", "example.org", "azet.sk", "icloud.com"} {
		s := c.Route(d).Settings
		if s.Rate.IsZero() || s.Burst < 1 || s.MaxConnections < 1 || s.MaxMessagesPerConnection < 1 || s.Priority < 1 {
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
