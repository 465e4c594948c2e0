package externalnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc/credentials"
)

// Channel is how the connection between host and plugin is secured.
type Channel string

const (
	// ChannelPeerCred (the default) is gRPC in plaintext on the instance's
	// private unix socket, with each end checking the other's kernel
	// credentials (SO_PEERCRED): the host that the listener is its plugin
	// process (pin.go), the plugin that the connecting peer runs as the
	// host's uid (HostUIDEnv). Nothing leaves the machine, so TLS would
	// only add CPU: go-plugin's AutoMTLS makes a P-521 certificate on both
	// sides of every start (about 12 ms of host CPU and 19 ms of plugin
	// CPU here, four times the rest of a start).
	ChannelPeerCred Channel = "peercred"
	// ChannelMTLS adds go-plugin's AutoMTLS on top of the same checks,
	// for operators whose policy requires encryption on local sockets.
	ChannelMTLS Channel = "mtls"
)

// HostUIDEnv tells the plugin which uid its host runs as; under
// ChannelPeerCred the plugin accepts connections only from that uid.
const HostUIDEnv = "RSPP_HOST_UID"

// ParseChannel checks a configured channel name ("" is the default).
func ParseChannel(s string) (Channel, error) {
	switch Channel(s) {
	case "", ChannelPeerCred:
		return ChannelPeerCred, nil
	case ChannelMTLS:
		return ChannelMTLS, nil
	}
	return "", fmt.Errorf("plugin channel %q: want %q or %q", s, ChannelPeerCred, ChannelMTLS)
}

// ErrPeerRefused is a connection to a plugin from a process that does not
// run as the plugin's host.
var ErrPeerRefused = errors.New("externalnode: peer refused")

// peerCredentials is the plugin side of ChannelPeerCred: a gRPC transport
// "security" that leaves the bytes alone but refuses a connection whose
// peer does not run as uid.
type peerCredentials struct {
	uid     int
	refused func(err error) // logs a refusal (the plugin's logger)
}

// peerAuth is what a checked connection carries.
type peerAuth struct {
	credentials.CommonAuthInfo
	UID, PID int
}

func (peerAuth) AuthType() string { return "peercred" }

func (c peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cred, err := peerCred(conn)
	if err == nil && int(cred.Uid) != c.uid {
		err = fmt.Errorf("connection from uid %d (pid %d), the host runs as uid %d", cred.Uid, cred.Pid, c.uid)
	}
	if err != nil {
		_ = conn.Close()
		err = fmt.Errorf("%w: %v", ErrPeerRefused, err)
		if c.refused != nil {
			c.refused(err)
		}
		return nil, nil, err
	}
	return conn, peerAuth{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}, UID: int(cred.Uid), PID: int(cred.Pid)}, nil
}

func (peerCredentials) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, peerAuth{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c peerCredentials) Clone() credentials.TransportCredentials { return c }

func (peerCredentials) OverrideServerName(string) error { return nil }

// servePeerCheck returns the plugin side's transport credentials: the
// peer check when the host asked for ChannelPeerCred (it names its uid and
// sent no certificate), nil when go-plugin's AutoMTLS secures the channel
// or the host is not an RSPP runtime that names its uid.
func servePeerCheck(refused func(error)) (credentials.TransportCredentials, error) {
	if os.Getenv("PLUGIN_CLIENT_CERT") != "" {
		return nil, nil
	}
	s := os.Getenv(HostUIDEnv)
	if s == "" {
		return nil, nil
	}
	uid, err := strconv.Atoi(s)
	if err != nil || uid < 0 {
		return nil, fmt.Errorf("%s=%q: not a uid", HostUIDEnv, s)
	}
	return peerCredentials{uid: uid, refused: refused}, nil
}
