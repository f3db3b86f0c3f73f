package queue

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Role is what a credential of the HTTP listener may do.
type Role uint8

// The roles, weakest first.
const (
	// RoleNone is a request without valid credentials: it gets 401.
	RoleNone Role = iota
	// RoleViewer reads: the operators' pages, /metrics, and the asynq web
	// UI read-only (its API answers 405 to anything but GET). Any other
	// method than GET, HEAD and OPTIONS is answered 403.
	RoleViewer
	// RoleAdmin may do everything, the asynq web UI's actions (run,
	// delete, archive, pause) included unless [web] read_only is true.
	RoleAdmin
)

var roleNames = [...]string{"none", "viewer", "admin"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "role(?)"
}

// credential is one way in: basic auth (user and pass) or a bearer token.
// Values are kept as SHA-256 sums, compared in constant time.
type credential struct {
	user, pass, token [sha256.Size]byte
	basic, bearer     bool
	role              Role
}

// authenticator decides the role of a request from the [web] section.
type authenticator struct {
	open  bool // everything without credentials, as admin
	creds []credential
}

// newAuthenticator reads the credentials of c (defaults applied: the
// environment's secrets are in it).
func newAuthenticator(c WebConfig) *authenticator {
	a := &authenticator{open: c.Open}
	add := func(user, pass, token string, role Role) {
		if user != "" && pass != "" {
			a.creds = append(a.creds, credential{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(pass)), basic: true, role: role})
		}
		if token != "" {
			a.creds = append(a.creds, credential{token: sha256.Sum256([]byte(token)), bearer: true, role: role})
		}
	}
	add(c.Username, c.Password, c.Token, RoleAdmin)
	add(c.ViewerUsername, c.ViewerPassword, c.ViewerToken, RoleViewer)
	return a
}

// configured reports whether anybody can get in: the listener is open or
// has a credential.
func (a *authenticator) configured() bool { return a.open || len(a.creds) > 0 }

// role returns the role of r's credentials: basic auth or
// "Authorization: Bearer <token>". Every credential is compared, in
// constant time, so that the time taken tells nothing.
func (a *authenticator) role(r *http.Request) Role {
	if a.open {
		return RoleAdmin
	}
	var user, pass, token [sha256.Size]byte
	u, p, isBasic := r.BasicAuth()
	if isBasic {
		user, pass = sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	}
	t, isBearer := bearerToken(r)
	if isBearer {
		token = sha256.Sum256([]byte(t))
	}
	role := RoleNone
	for _, c := range a.creds {
		ok := 0
		if c.basic && isBasic {
			ok = subtle.ConstantTimeCompare(user[:], c.user[:]) & subtle.ConstantTimeCompare(pass[:], c.pass[:])
		}
		if c.bearer && isBearer {
			ok = subtle.ConstantTimeCompare(token[:], c.token[:])
		}
		if ok == 1 && c.role > role {
			role = c.role
		}
	}
	return role
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

// roleKey is the context key of the request's Role.
type roleKey struct{}

// requestRole returns the role that authenticator.wrap found for r.
func requestRole(r *http.Request) Role {
	role, _ := r.Context().Value(roleKey{}).(Role)
	return role
}

// wrap requires credentials on next: 401 without (or with wrong) ones, 403
// for a viewer's request that would change something (other methods than
// GET, HEAD and OPTIONS), except under /monitoring/, whose read-only API
// answers viewers itself (405). The role is in the request's context.
func (a *authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := a.role(r)
		if role == RoleNone {
			w.Header().Set("WWW-Authenticate", `Basic realm="bounceloop", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="bounceloop"`)
			msg := "unauthorized: basic auth or a bearer token required"
			if !a.configured() {
				msg = "unauthorized: no credentials are configured; set [web] username with " + WebPasswordEnv +
					", or " + WebTokenEnv + " (or open = true on a trusted network)"
			}
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
		if role == RoleViewer && !safeMethod(r.Method) && !strings.HasPrefix(r.URL.Path, "/monitoring/") {
			http.Error(w, "forbidden: the viewer role only reads", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// byRole serves admin requests with admin and the others with viewer.
func byRole(admin, viewer http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestRole(r) == RoleAdmin {
			admin.ServeHTTP(w, r)
			return
		}
		viewer.ServeHTTP(w, r)
	})
}
