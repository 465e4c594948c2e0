// Command hostile is a node that attacks its sandbox, one behaviour per run
// (RSPP_HOSTILE), for the isolation tests in test/isolation. Each attempt
// reports its outcome as a text event "<behaviour>: ok" or
// "<behaviour>: <error>"; "honest" echoes its input like a good node.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rspp/rspp/externalnode"
	"github.com/rspp/rspp/kernel/eventabi"
)

func main() {
	// -start-delay D: a node slow to start (sleeps before its handshake).
	if len(os.Args) > 2 && os.Args[1] == "-start-delay" {
		if d, err := time.ParseDuration(os.Args[2]); err == nil {
			time.Sleep(d)
		}
	}
	b := os.Getenv("RSPP_HOSTILE")
	if b == "announce-tcp" {
		// A handshake naming a host TCP address (HOSTILE_TCP) instead of
		// its socket: the runtime must never connect there.
		fmt.Printf("1|1|tcp|%s|grpc|\n", os.Getenv("HOSTILE_TCP"))
		time.Sleep(time.Hour)
		return
	}
	if b == "garbage" {
		// Before the handshake: go-plugin must refuse this line.
		fmt.Println("\x00\xffGARBAGE|not|a|handshake\xfe")
	}
	externalnode.Serve(&node{behaviour: b})
}

type node struct{ behaviour string }

func (n *node) Info() externalnode.Info {
	return externalnode.Info{Name: "hostile", Kind: "custom", Version: "0.0.1"}
}

// Configure takes the behaviour from the node's config block too
// ({"behaviour": "memory"}): under the tenant profile the host environment
// is not passed through, and the config block is how a runtime config
// drives a node.
func (n *node) Configure(_ context.Context, cfg externalnode.Config) error {
	var c struct {
		Behaviour string `json:"behaviour"`
	}
	if err := cfg.Decode(&c); err != nil {
		return err
	}
	if c.Behaviour != "" {
		n.behaviour = c.Behaviour
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (n *node) Invoke(ctx context.Context, call *externalnode.Call) error {
	report := func(err error) error {
		return call.EmitText(eventabi.TypeTextDelta, n.behaviour+": "+errText(err), true)
	}
	switch n.behaviour {
	case "honest":
		for ev := range call.Inputs() {
			if err := call.Emit(ev); err != nil {
				return err
			}
		}
		return nil
	case "memory":
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	case "forkbomb":
		var err error
		forks := 0
		for ; forks < 100000; forks++ {
			if _, err = syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, &syscall.ProcAttr{}); err != nil {
				break
			}
		}
		return call.EmitText(eventabi.TypeTextDelta, fmt.Sprintf("forkbomb: forks=%d %s", forks, errText(err)), true)
	case "cpu":
		end := time.Now().Add(3 * time.Second)
		done := make(chan struct{})
		for i := 0; i < 4; i++ {
			go func() {
				for time.Now().Before(end) {
				}
				done <- struct{}{}
			}()
		}
		for i := 0; i < 4; i++ {
			<-done
		}
		return report(nil)
	case "tcp":
		c, err := net.DialTimeout("tcp", os.Getenv("HOSTILE_TCP"), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return report(err)
	case "readfile":
		_, err := os.ReadFile(os.Getenv("HOSTILE_SECRET"))
		return report(err)
	case "write":
		return report(os.WriteFile(os.Getenv("HOSTILE_OUTSIDE"), []byte("pwned"), 0o644))
	case "signal":
		pid, _ := strconv.Atoi(os.Getenv("HOSTILE_HOST_PID"))
		err := syscall.Kill(pid, syscall.SIGKILL)
		_, _, e := syscall.Syscall(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(pid), 0)
		var perr error
		if e != 0 {
			perr = e
		}
		return call.EmitText(eventabi.TypeTextDelta, "signal: kill="+errText(err)+" ptrace="+errText(perr), true)
	case "rawsocket":
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
		if err == nil {
			_ = syscall.Close(fd)
		}
		return report(err)
	case "oversized":
		return call.EmitText(eventabi.TypeTextDelta, strings.Repeat("x", 4<<20), true)
	case "malformed":
		return call.Emit(eventabi.Event{Type: "no such type!", SchemaVersion: 999})
	case "wrongsession":
		return call.Emit(eventabi.Event{Type: eventabi.TypeTextDelta, SessionID: "honest-session", TurnID: "honest-turn",
			Text: &eventabi.Text{Text: "injected"}})
	case "aftercancel":
		<-ctx.Done()
		for i := 0; i < 20; i++ {
			_ = call.EmitText(eventabi.TypeTextDelta, "after cancel", false)
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	return report(fmt.Errorf("unknown behaviour %q", n.behaviour))
}
