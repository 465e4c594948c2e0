package kernel

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// sumSquares gives exactly the float64 sum of squares the VAD used to
// compute, for every frame length (odd multiples of a sample included)
// and for full-scale samples.
func TestSumSquaresMatchesTheFloatSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 700; n++ {
		pcm := make([]byte, 2*n)
		for i := range n {
			v := int16(r.IntN(65536) - 32768)
			if i%7 == 0 {
				v = -32768 // the largest square
			}
			binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
		}
		var want float64
		for i := 0; i+1 < len(pcm); i += 2 {
			s := float64(int16(binary.LittleEndian.Uint16(pcm[i:])))
			want += s * s
		}
		if got := sumSquares(pcm); float64(got) != want {
			t.Fatalf("%d samples: sumSquares = %d, float sum = %v", n, got, want)
		}
	}
}

func BenchmarkSumSquares(b *testing.B) {
	pcm := make([]byte, 640)
	for i := range pcm {
		pcm[i] = byte(i * 7)
	}
	for b.Loop() {
		_ = sumSquares(pcm)
	}
}
