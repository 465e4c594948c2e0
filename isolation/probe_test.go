package isolation_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// probeReport is what the "probe" helper finds out about its sandbox. Each
// attempt field is "" when the attempt succeeded, else the error.
type probeReport struct {
	Cgroup       string   `json:"cgroup"` // /proc/self/cgroup, read as first action
	PID          int      `json:"pid"`
	UID          int      `json:"uid"`
	EUID         int      `json:"euid"`
	Hostname     string   `json:"hostname"`
	CapEff       string   `json:"cap_eff"`
	NoNewPrivs   string   `json:"no_new_privs"`
	Seccomp      string   `json:"seccomp"`
	Cwd          string   `json:"cwd"`
	WriteTMPDIR  string   `json:"write_tmpdir"`
	Env          []string `json:"env"`
	FDs          []string `json:"fds"`
	ReadSecret   string   `json:"read_secret"`
	WriteOutside string   `json:"write_outside"`
	WriteScratch string   `json:"write_scratch"`
	TCPConnect   string   `json:"tcp_connect"`
	RawSocket    string   `json:"raw_socket"`
	KillHost     string   `json:"kill_host"`
	Ptrace       string   `json:"ptrace"`
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sandboxHelper(mode string) int {
	switch mode {
	case "probe":
		fmt.Println(probe())
		return 0
	case "probe-then-sleep":
		fmt.Println(probe())
		_ = os.Stdout.Close()
		time.Sleep(time.Minute)
		return 0
	case "plugin":
		servePingPlugin()
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

func probe() string {
	var r probeReport
	cg, _ := os.ReadFile("/proc/self/cgroup")
	r.Cgroup = string(cg)
	// Descriptors before the probe opens any of its own (netpoller etc.).
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		t, _ := os.Readlink("/proc/self/fd/" + e.Name())
		r.FDs = append(r.FDs, e.Name()+"->"+t)
	}
	r.PID, r.UID, r.EUID = os.Getpid(), os.Getuid(), os.Geteuid()
	r.Hostname, _ = os.Hostname()
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 {
				switch f[0] {
				case "CapEff:":
					r.CapEff = f[1]
				case "NoNewPrivs:":
					r.NoNewPrivs = f[1]
				case "Seccomp:":
					r.Seccomp = f[1]
				}
			}
		}
	}
	r.Cwd, _ = os.Getwd()
	r.Env = os.Environ()
	_, err := os.ReadFile(os.Getenv("PROBE_SECRET"))
	r.ReadSecret = errString(err)
	r.WriteOutside = errString(os.WriteFile(os.Getenv("PROBE_OUTSIDE"), []byte("pwned"), 0o644))
	r.WriteScratch = errString(os.WriteFile("scratch-file", []byte("ok"), 0o644))
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		r.WriteTMPDIR = errString(os.WriteFile(filepath.Join(tmp, "tmp-file"), []byte("ok"), 0o644))
	} else {
		r.WriteTMPDIR = "TMPDIR is not set" // never write into the working dir
	}
	c, err := net.DialTimeout("tcp", os.Getenv("PROBE_TCP"), time.Second)
	if err == nil {
		_ = c.Close()
	}
	r.TCPConnect = errString(err)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err == nil {
		_ = syscall.Close(fd)
	}
	r.RawSocket = errString(err)
	host, _ := strconv.Atoi(os.Getenv("PROBE_HOST_PID"))
	if host > 0 { // kill(0) would signal the probe's own group
		r.KillHost = errString(syscall.Kill(host, syscall.SIGTERM))
		r.Ptrace = errString(unix.PtraceAttach(host))
	}
	b, _ := json.Marshal(r)
	return string(b)
}
