package queue

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// Test credentials.
const (
	adminUser   = "ops"
	adminPass   = "admin-password-1"
	adminToken  = "admin-token-0123456789"
	viewerUser  = "watcher"
	viewerPass  = "viewer-password-1"
	viewerToken = "viewer-token-0123456789"
)

// clearWebEnv makes the configured secrets count.
func clearWebEnv(t *testing.T) {
	t.Helper()
	for _, env := range []string{WebPasswordEnv, WebTokenEnv, WebViewerPasswordEnv, WebViewerTokenEnv} {
		t.Setenv(env, "")
	}
}

func TestWebConfigValidate(t *testing.T) {
	clearWebEnv(t)
	f := false
	tests := []struct {
		name    string
		c       WebConfig
		env     map[string]string
		wantErr string // the key named; "" for valid
	}{
		{"zero: closed, no credentials", WebConfig{}, nil, ""},
		{"open", WebConfig{Open: true}, nil, ""},
		{"admin basic", WebConfig{Username: adminUser, Password: adminPass}, nil, ""},
		{"admin password from the environment", WebConfig{Username: adminUser}, map[string]string{WebPasswordEnv: adminPass}, ""},
		{"all four", WebConfig{Username: adminUser, Password: adminPass, Token: adminToken, ViewerUsername: viewerUser, ViewerPassword: viewerPass, ViewerToken: viewerToken, ReadOnly: &f}, nil, ""},
		{"tokens from the environment", WebConfig{}, map[string]string{WebTokenEnv: adminToken, WebViewerTokenEnv: viewerToken}, ""},
		{"username without a password", WebConfig{Username: adminUser}, nil, "web.password"},
		{"password without a username", WebConfig{Password: adminPass}, nil, "web.username"},
		{"viewer username without a password", WebConfig{ViewerUsername: viewerUser}, nil, "web.viewer_password"},
		{"short token", WebConfig{Token: "short"}, nil, "web.token"},
		{"short viewer token in the environment", WebConfig{}, map[string]string{WebViewerTokenEnv: "short"}, "web.viewer_token"},
		{"open with credentials", WebConfig{Open: true, Token: adminToken}, nil, "web.open"},
		{"open with a password in the environment", WebConfig{Open: true}, map[string]string{WebPasswordEnv: "x"}, "web.open"},
		{"same user for both roles", WebConfig{Username: adminUser, Password: adminPass, ViewerUsername: adminUser, ViewerPassword: viewerPass}, nil, "web.viewer_username"},
		{"same token for both roles", WebConfig{Token: adminToken, ViewerToken: adminToken}, nil, "web.viewer_token"},
		{"bad listen", WebConfig{Listen: "8080"}, nil, "web.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := tt.c.WithDefaults().Validate()
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate(%+v) = %v, want error naming %q", tt.c, err, tt.wantErr)
			}
			if err != nil {
				for _, secret := range []string{adminPass, adminToken, viewerPass, viewerToken} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("Validate() error %q shows a secret", err)
					}
				}
			}
		})
	}
}

func TestWebConfigEnvironmentOverrides(t *testing.T) {
	t.Setenv(WebPasswordEnv, "p-env")
	t.Setenv(WebTokenEnv, "t-env-0123456789")
	t.Setenv(WebViewerPasswordEnv, "vp-env")
	t.Setenv(WebViewerTokenEnv, "vt-env-0123456789")
	c := WebConfig{Password: "p", Token: "t", ViewerPassword: "vp", ViewerToken: "vt"}.WithDefaults()
	if c.Password != "p-env" || c.Token != "t-env-0123456789" || c.ViewerPassword != "vp-env" || c.ViewerToken != "vt-env-0123456789" {
		t.Errorf("WithDefaults() = %+v, want the environment's secrets", c)
	}
	if c.ReadOnly == nil || !*c.ReadOnly || c.Open || c.Listen != DefaultListen {
		t.Errorf("WithDefaults() = %+v, want read-only, closed, on %s", c, DefaultListen)
	}
}

func TestAuthenticatorRole(t *testing.T) {
	all := WebConfig{Username: adminUser, Password: adminPass, Token: adminToken, ViewerUsername: viewerUser, ViewerPassword: viewerPass, ViewerToken: viewerToken}
	tests := []struct {
		name string
		c    WebConfig
		auth string // the Authorization header
		want Role
	}{
		{"nothing configured, nothing given", WebConfig{}, "", RoleNone},
		{"nothing configured, empty basic auth", WebConfig{}, basic("", ""), RoleNone},
		{"nothing configured, empty bearer", WebConfig{}, "Bearer ", RoleNone},
		{"open", WebConfig{Open: true}, "", RoleAdmin},
		{"no credentials", all, "", RoleNone},
		{"admin basic", all, basic(adminUser, adminPass), RoleAdmin},
		{"admin bearer", all, "Bearer " + adminToken, RoleAdmin},
		{"bearer in lower case", all, "bearer " + adminToken, RoleAdmin},
		{"viewer basic", all, basic(viewerUser, viewerPass), RoleViewer},
		{"viewer bearer", all, "Bearer " + viewerToken, RoleViewer},
		{"wrong password", all, basic(adminUser, viewerPass), RoleNone},
		{"viewer's password for the admin", all, basic(adminUser, viewerPass), RoleNone},
		{"admin's password for the viewer", all, basic(viewerUser, adminPass), RoleNone},
		{"password with a suffix", all, basic(adminUser, adminPass+"x"), RoleNone},
		{"password prefix", all, basic(adminUser, adminPass[:len(adminPass)-1]), RoleNone},
		{"wrong token", all, "Bearer " + adminToken + "x", RoleNone},
		{"token as basic password", all, basic(adminUser, adminToken), RoleNone},
		{"password as bearer token", all, "Bearer " + adminPass, RoleNone},
		{"token without its scheme", all, adminToken, RoleNone},
		{"only a token configured: basic auth", WebConfig{Token: adminToken}, basic("", adminToken), RoleNone},
		{"only basic configured: empty bearer", WebConfig{Username: adminUser, Password: adminPass}, "Bearer ", RoleNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if got := newAuthenticator(tt.c).role(r); got != tt.want {
				t.Errorf("role(%q) = %v, want %v", tt.auth, got, tt.want)
			}
		})
	}
}

func basic(user, pass string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// authStack is a stack (not started) whose routes are served by an
// httptest server, with the web UI on its own Redis database and a queue
// "hostile" holding one task.
func authStack(t *testing.T, web WebConfig) (*Stack, *httptest.Server, *redis.Client) {
	t.Helper()
	clearWebEnv(t)
	t.Setenv(WebhookSecretEnv, "")
	rdb := redistest.DB(t)
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStack(StackConfig{
		Redis: rdb, ConnOpt: asynq.RedisClientOpt{Addr: rdb.Options().Addr, DB: rdb.Options().DB}, KeyPrefix: "auth", Web: web,
		Policy: policy.Config{}, Classifier: cl, SMTP: sender.Config{Routes: map[string]string{"*": "127.0.0.1:1"}}, Resolver: noDNS{},
		Webhook: WebhookConfig{Secret: testWebhookSecret},
		Log:     zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Server.o.Web.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st.Server.routes())
	t.Cleanup(func() {
		srv.Close()
		st.Server.closeHTTP()
		_ = st.Pool.Close()
		_ = st.Handler.Inspector.Close()
	})
	c := asynq.NewClientFromRedisClient(rdb)
	if _, err := c.Enqueue(asynq.NewTask("test:hostile", nil), asynq.Queue("hostile")); err != nil {
		t.Fatal(err)
	}
	return st, srv, rdb
}

// do sends a request with the Authorization header auth ("" for none) and
// returns the status and the body.
func do(t *testing.T, method, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized && len(resp.Header.Values("WWW-Authenticate")) != 2 {
		t.Errorf("%s %s = 401 with WWW-Authenticate %q, want Basic and Bearer", method, url, resp.Header.Values("WWW-Authenticate"))
	}
	return resp.StatusCode, string(b)
}

// routeWants is every route of the listener but /healthz and /bounces,
// with its status for a reader.
var routeWants = []struct {
	path string
	want int
}{
	{"/", http.StatusFound},
	{"/metrics", http.StatusOK},
	{"/monitoring", http.StatusFound},
	{"/monitoring/", http.StatusOK},
	{"/monitoring/queues/hostile", http.StatusOK},
	{"/monitoring/api/queues", http.StatusOK},
	{"/monitoring/api/queues/hostile/pending_tasks", http.StatusOK},
	{"/suppressions", http.StatusOK},
	{"/suppressions.csv", http.StatusOK},
	{"/domains", http.StatusOK},
	{"/reports", http.StatusOK},
	{"/reports/2026-05", http.StatusNotFound},
	{"/no-such-page", http.StatusNotFound},
	{"/healthz/x", http.StatusNotFound},
}

// TestRoutesAccess checks every route without, with wrong and with each
// role's credentials (basic auth and bearer token); /healthz and the
// webhook stay reachable without credentials; a viewer reads but cannot
// change anything, in the asynq web UI (405 from its read-only API) or
// elsewhere (403); the admin can.
func TestRoutesAccess(t *testing.T) {
	f := false
	_, srv, rdb := authStack(t, WebConfig{Listen: "off", Username: adminUser, Password: adminPass, Token: adminToken,
		ViewerUsername: viewerUser, ViewerPassword: viewerPass, ViewerToken: viewerToken, ReadOnly: &f}.WithDefaults())
	creds := []struct {
		name string
		auth string
		ok   bool
	}{
		{"none", "", false},
		{"wrong password", basic(adminUser, "nope"), false},
		{"wrong token", "Bearer not-the-token-0123456789", false},
		{"admin basic", basic(adminUser, adminPass), true},
		{"admin bearer", "Bearer " + adminToken, true},
		{"viewer basic", basic(viewerUser, viewerPass), true},
		{"viewer bearer", "Bearer " + viewerToken, true},
	}
	for _, c := range creds {
		for _, rt := range routeWants {
			want := http.StatusUnauthorized
			if c.ok {
				want = rt.want
			}
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				if method == http.MethodHead && c.ok && strings.HasPrefix(rt.path, "/monitoring/api/") {
					continue // the web UI's API routes GET only (405)
				}
				if got, body := do(t, method, srv.URL+rt.path, c.auth); got != want {
					t.Errorf("%s %s with %s = %d, want %d: %.200s", method, rt.path, c.name, got, want, body)
				}
			}
		}
		if got, _ := do(t, http.MethodGet, srv.URL+"/healthz", c.auth); got != http.StatusOK {
			t.Errorf("GET /healthz with %s = %d, want 200", c.name, got)
		}
		if got, _ := do(t, http.MethodGet, srv.URL+"/bounces", c.auth); got != http.StatusMethodNotAllowed {
			t.Errorf("GET /bounces with %s = %d, want 405 (its own signature, no basic auth)", c.name, got)
		}
	}
	// The webhook answers its signature, not the listener's credentials.
	body := `{"time":"2018-05-17T08:03:11Z","recipient":"route@azet.sk","code":550}`
	if status, _ := post(t, srv.URL+"/bounces", "application/x-ndjson", WebhookSignature(testWebhookSecret, []byte(body)), strings.NewReader(body)); status != http.StatusOK {
		t.Errorf("signed POST /bounces without credentials = %d, want 200", status)
	}
	if status, _ := post(t, srv.URL+"/bounces", "application/x-ndjson", WebhookSignature("wrong-secret-0123456789", []byte(body)), strings.NewReader(body)); status != http.StatusUnauthorized {
		t.Errorf("badly signed POST /bounces = %d, want 401", status)
	}

	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { _ = insp.Close() })
	paused := func() bool {
		qi, err := insp.GetQueueInfo("hostile")
		if err != nil {
			t.Fatal(err)
		}
		return qi.Paused
	}
	// What a viewer cannot do, with either credential.
	for _, auth := range []string{basic(viewerUser, viewerPass), "Bearer " + viewerToken} {
		for _, tt := range []struct {
			method, path string
			want         int
		}{
			{http.MethodPost, "/monitoring/api/queues/hostile:pause", http.StatusMethodNotAllowed},
			{http.MethodDelete, "/monitoring/api/queues/hostile", http.StatusMethodNotAllowed},
			{http.MethodDelete, "/monitoring/api/queues/hostile/pending_tasks:delete_all", http.StatusMethodNotAllowed},
			{http.MethodPost, "/monitoring/api/queues/hostile/pending_tasks:archive_all", http.StatusMethodNotAllowed},
			{http.MethodPut, "/monitoring/api/queues/hostile", http.StatusMethodNotAllowed},
			{http.MethodPost, "/suppressions", http.StatusForbidden},
			{http.MethodDelete, "/suppressions", http.StatusForbidden},
			{http.MethodPost, "/monitoring", http.StatusForbidden},
		} {
			if got, body := do(t, tt.method, srv.URL+tt.path, auth); got != tt.want {
				t.Errorf("viewer %s %s = %d, want %d: %.200s", tt.method, tt.path, got, tt.want, body)
			}
		}
	}
	if paused() {
		t.Fatal("a viewer paused the queue")
	}
	if n, _ := insp.ListPendingTasks("hostile"); len(n) != 1 {
		t.Fatalf("a viewer changed the queue's tasks: %d pending, want 1", len(n))
	}
	// The viewer's UI is told it is read-only (its buttons are hidden),
	// the admin's is not.
	if _, page := do(t, http.MethodGet, srv.URL+"/monitoring/", basic(viewerUser, viewerPass)); !strings.Contains(page, `READ_ONLY="true"`) {
		t.Errorf("the viewer's UI page lacks READ_ONLY=\"true\"")
	}
	if _, page := do(t, http.MethodGet, srv.URL+"/monitoring/", basic(adminUser, adminPass)); !strings.Contains(page, `READ_ONLY="false"`) {
		t.Errorf("the admin's UI page lacks READ_ONLY=\"false\"")
	}
	// The admin can.
	if got, body := do(t, http.MethodPost, srv.URL+"/monitoring/api/queues/hostile:pause", "Bearer "+adminToken); got >= 300 {
		t.Fatalf("admin POST pause = %d: %s", got, body)
	}
	if !paused() {
		t.Error("the admin's pause did not pause the queue")
	}
}

// TestRoutesAccessReadOnlyAdmin checks that read_only (the default) makes
// the admin's web UI read-only too.
func TestRoutesAccessReadOnlyAdmin(t *testing.T) {
	_, srv, _ := authStack(t, WebConfig{Listen: "off", Token: adminToken}.WithDefaults())
	if got, _ := do(t, http.MethodPost, srv.URL+"/monitoring/api/queues/hostile:pause", "Bearer "+adminToken); got != http.StatusMethodNotAllowed {
		t.Errorf("admin POST pause with read_only = %d, want 405", got)
	}
	if got, _ := do(t, http.MethodGet, srv.URL+"/monitoring/api/queues", "Bearer "+adminToken); got != http.StatusOK {
		t.Errorf("admin GET queues with read_only = %d, want 200", got)
	}
}

// TestRoutesClosedByDefault checks that a listener without credentials
// answers 401 everywhere but /healthz (saying what to configure), and that
// open = true serves everything without credentials.
func TestRoutesClosedByDefault(t *testing.T) {
	t.Run("no credentials", func(t *testing.T) {
		_, srv, _ := authStack(t, WebConfig{Listen: "off"}.WithDefaults())
		for _, rt := range routeWants {
			got, body := do(t, http.MethodGet, srv.URL+rt.path, "")
			if got != http.StatusUnauthorized || !strings.Contains(body, "no credentials are configured") {
				t.Errorf("GET %s = %d %q, want 401 saying no credentials are configured", rt.path, got, body)
			}
			if got, _ := do(t, http.MethodGet, srv.URL+rt.path, basic("", "")); got != http.StatusUnauthorized {
				t.Errorf("GET %s with empty basic auth = %d, want 401", rt.path, got)
			}
		}
		if got, _ := do(t, http.MethodGet, srv.URL+"/healthz", ""); got != http.StatusOK {
			t.Errorf("GET /healthz = %d, want 200", got)
		}
	})
	t.Run("open", func(t *testing.T) {
		_, srv, _ := authStack(t, WebConfig{Listen: "off", Open: true}.WithDefaults())
		for _, rt := range routeWants {
			if got, body := do(t, http.MethodGet, srv.URL+rt.path, ""); got != rt.want {
				t.Errorf("GET %s on an open listener = %d, want %d: %.200s", rt.path, got, rt.want, body)
			}
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNotLogged runs a serve stack with every secret set from the
// environment and a debug logger, sends requests with right and wrong
// credentials and webhook signatures, and finds no secret in the logs.
func TestSecretsNotLogged(t *testing.T) {
	rdb := redistest.DB(t)
	t.Setenv(WebPasswordEnv, adminPass)
	t.Setenv(WebTokenEnv, adminToken)
	t.Setenv(WebViewerPasswordEnv, viewerPass)
	t.Setenv(WebViewerTokenEnv, viewerToken)
	t.Setenv(WebhookSecretEnv, testWebhookSecret)
	cl, err := bounces.NewClassifier()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	st, err := NewStack(StackConfig{
		Redis: rdb, ConnOpt: asynq.RedisClientOpt{Addr: rdb.Options().Addr, DB: rdb.Options().DB}, KeyPrefix: "secrets",
		Web: WebConfig{Listen: "127.0.0.1:0", Username: adminUser, ViewerUsername: viewerUser}, Policy: policy.Config{}, Classifier: cl,
		SMTP: sender.Config{Routes: map[string]string{"*": "127.0.0.1:1"}}, Resolver: noDNS{},
		Log: zerolog.New(&logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown)
	base := "http://" + st.Server.Addr()
	for _, auth := range []string{"", basic(adminUser, adminPass), basic(adminUser, viewerPass), "Bearer " + viewerToken, "Bearer " + adminToken + "x", basic(viewerUser, adminToken)} {
		for _, path := range []string{"/metrics", "/monitoring/api/queues", "/suppressions"} {
			do(t, http.MethodGet, base+path, auth)
		}
	}
	body := `{"time":"2018-05-17T08:03:11Z","recipient":"secret@azet.sk","code":550}`
	post(t, base+"/bounces", "application/x-ndjson", WebhookSignature(testWebhookSecret, []byte(body)), strings.NewReader(body))
	post(t, base+"/bounces", "application/x-ndjson", "sha256="+strings.Repeat("0", 64), strings.NewReader(body))
	st.Shutdown()
	out := logs.String()
	if out == "" {
		t.Fatal("nothing was logged")
	}
	for _, secret := range []string{adminPass, adminToken, viewerPass, viewerToken, testWebhookSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret (%.4s...) appears in the logs", secret)
		}
	}
}
