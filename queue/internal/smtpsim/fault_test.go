package smtpsim

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestTarpit: a connection opened while the fault is set is never greeted;
// one opened after it is cleared is.
func TestTarpit(t *testing.T) {
	w := start(t, Config{Seed: 1, Providers: []Provider{{Name: "p", Domains: []string{"example.org"}}}})
	addr := w.Routes()["example.org"]
	if err := w.SetFault("example.org", FaultTarpit); err != nil {
		t.Fatal(err)
	}
	greeting := func() (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		return bufio.NewReader(c).ReadString('\n')
	}
	if line, err := greeting(); err == nil {
		t.Errorf("greeting under FaultTarpit = %q, want none (a read timeout)", line)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("greeting under FaultTarpit: %v, want a read timeout", err)
	}
	if err := w.SetFault("example.org", FaultNone); err != nil {
		t.Fatal(err)
	}
	if line, err := greeting(); err != nil || len(line) < 4 || line[:4] != "220 " {
		t.Errorf("greeting after clearing = %q, %v; want 220", line, err)
	}
	if got := Fault(FaultTarpit).String(); got != "tarpit" {
		t.Errorf("FaultTarpit.String() = %q", got)
	}
}

func TestDuplicated(t *testing.T) {
	w := start(t, Config{Seed: 1, Providers: []Provider{{Name: "p", Domains: []string{"example.org"}}}})
	addr := w.Routes()["example.org"]
	send(t, addr, "a@example.org", "once", 1)
	send(t, addr, "a@example.org", "twice", 1)
	send(t, addr, "b@example.org", "twice", 1)
	d := w.Duplicated()
	if len(d) != 1 || d["twice"] != 2 {
		t.Errorf("Duplicated() = %v, want map[twice:2]", d)
	}
}

// TestTempFailPerAttempt: temporary failures are drawn afresh at each
// attempt. With a share of 0.5, about 1 recipient in 32 fails five
// attempts in a row; when the draw hardly depended on the attempt (the
// attempt number hashed last), about half of them did.
func TestTempFailPerAttempt(t *testing.T) {
	w := start(t, Config{Seed: 1, Providers: []Provider{{Name: "p", Domains: []string{"example.org"}}},
		Default: Domain{TempFailShare: 0.5}})
	addr := w.Routes()["example.org"]
	const rcpts, attempts = 100, 5
	stuck, first := 0, 0
	for i := 0; i < rcpts; i++ {
		to := fmt.Sprintf("user%d@example.org", i)
		n := 0
		for ; n < attempts; n++ {
			if code, _ := send(t, addr, to, fmt.Sprintf("m%d", i), 1); code != 451 {
				break
			}
		}
		if n > 0 {
			first++
		}
		if n == attempts {
			stuck++
		}
	}
	if first < 30 || first > 70 {
		t.Errorf("%d of %d recipients failed their first attempt, want about half", first, rcpts)
	}
	if stuck > 12 {
		t.Errorf("%d of %d recipients failed %d attempts in a row, want about %d", stuck, rcpts, attempts, rcpts>>attempts)
	}
}
