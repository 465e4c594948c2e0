package main

import (
	"fmt"
	"os"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rspp/rspp/supervisor/app"
	"github.com/rspp/rspp/transports/livekit"
)

// livekitFlags are serve's LiveKit worker flags. The API key and secret
// come from the environment only, so they never show in a process list.
type livekitFlags struct {
	url, agentName, opus, tenant string
	maxSessions, perRoom         int
	drain                        time.Duration
}

func (l *livekitFlags) register(f *pflag.FlagSet) {
	f.StringVar(&l.url, "livekit-url", "", "serve as an agent worker of this LiveKit server (ws://host:7880); keys from LIVEKIT_API_KEY and LIVEKIT_API_SECRET")
	f.StringVar(&l.agentName, "livekit-agent-name", livekit.DefaultAgentName, "with --livekit-url: the agent name explicit dispatches ask for")
	f.IntVar(&l.maxSessions, "livekit-max-sessions", livekit.DefaultMaxSessions, "with --livekit-url: most sessions of this worker; job offers past it are declined")
	f.IntVar(&l.perRoom, "livekit-room-sessions", livekit.DefaultMaxSessionsPerRoom, "with --livekit-url: most participants of one room that get a session")
	f.DurationVar(&l.drain, "livekit-drain", app.DefaultLiveKitDrain, "with --livekit-url: on SIGTERM/SIGINT, how long live rooms may run on (no new jobs) before their sessions close")
	f.StringVar(&l.opus, "livekit-opus", "", "with --livekit-url: the rspp-opus codec helper (default: beside rspp, then PATH)")
}

func (l *livekitFlags) options() (*app.LiveKitOptions, error) {
	key, secret := os.Getenv("LIVEKIT_API_KEY"), os.Getenv("LIVEKIT_API_SECRET")
	if key == "" || secret == "" {
		return nil, usageError{fmt.Errorf("--livekit-url needs LIVEKIT_API_KEY and LIVEKIT_API_SECRET in the environment")}
	}
	return &app.LiveKitOptions{
		Agent: livekit.Options{URL: l.url, APIKey: key, APISecret: secret, AgentName: l.agentName, Version: "rspp",
			MaxSessions: l.maxSessions, MaxSessionsPerRoom: l.perRoom, OpusBinary: l.opus, Tenant: l.tenant},
		Drain: l.drain,
	}, nil
}

func tokenCmd() *cobra.Command {
	var (
		room, identity, name string
		ttl                  time.Duration
	)
	cmd := &cobra.Command{
		Use:     "token",
		Short:   "Print a LiveKit room token for a test participant (keys from LIVEKIT_API_KEY, LIVEKIT_API_SECRET)",
		Example: "  LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret rspp token --room demo --identity alice",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, secret := os.Getenv("LIVEKIT_API_KEY"), os.Getenv("LIVEKIT_API_SECRET")
			if key == "" || secret == "" {
				return usageError{fmt.Errorf("LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be set")}
			}
			if room == "" || identity == "" {
				return usageError{fmt.Errorf("--room and --identity are required")}
			}
			at := auth.NewAccessToken(key, secret)
			at.SetIdentity(identity).SetName(name).SetValidFor(ttl).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room})
			tok, err := at.ToJWT()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&room, "room", "", "room to join")
	f.StringVar(&identity, "identity", "", "participant identity")
	f.StringVar(&name, "name", "", "participant display name")
	f.DurationVar(&ttl, "ttl", 6*time.Hour, "how long the token is valid")
	return cmd
}
