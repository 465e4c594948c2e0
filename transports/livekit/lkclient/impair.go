package lkclient

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Impair is network trouble the participant's RTP meets, emulated at its
// RTP layer: each packet it sends and receives is lost with probability
// Loss and otherwise delayed by a uniform random time in [0, Jitter)
// (packets overtake each other as on a real network). For kernels
// without sch_netem; where netem exists the tests use it instead.
type Impair struct {
	Loss   float64
	Jitter time.Duration
}

func (im Impair) active() bool { return im.Loss > 0 || im.Jitter > 0 }

// drop says whether this packet is lost; delay how long it is held.
func (im Impair) drop() bool { return im.Loss > 0 && rand.Float64() < im.Loss }

func (im Impair) delay() time.Duration {
	if im.Jitter <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(im.Jitter)))
}

// impairFactory makes the send-side interceptor.
type impairFactory struct{ im Impair }

func (f impairFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &impairInterceptor{im: f.im}, nil
}

type impairInterceptor struct {
	interceptor.NoOp
	im Impair
	wg sync.WaitGroup
}

func (i *impairInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if i.im.drop() {
			return len(payload), nil
		}
		d := i.im.delay()
		if d == 0 {
			return w.Write(h, payload, a)
		}
		hc := h.Clone()
		pc := append([]byte(nil), payload...)
		i.wg.Add(1)
		time.AfterFunc(d, func() {
			defer i.wg.Done()
			_, _ = w.Write(&hc, pc, a)
		})
		return len(payload), nil
	})
}

func (i *impairInterceptor) Close() error {
	i.wg.Wait()
	return nil
}
