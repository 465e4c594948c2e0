package livekit

import (
	"sync"

	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

var quietOnce sync.Once

// QuietSDK makes the LiveKit SDK (and pion under it) log errors only.
// It must be a leveled zap logger, not a discarding one: pion's adapter
// for other loggers formats every debug message before dropping it, and
// that formatting reads a track's fields while pion writes them (a data
// race the race detector reports). Safe to call many times.
func QuietSDK() {
	quietOnce.Do(func() {
		l, err := protologger.NewZapLogger(&protologger.Config{Level: "error"})
		if err != nil {
			lksdk.SetLogger(protologger.GetDiscardLogger())
			return
		}
		lksdk.SetLogger(l)
	})
}
