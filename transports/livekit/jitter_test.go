package livekit

import (
	"slices"
	"testing"
)

func TestReorder(t *testing.T) {
	type out struct {
		lost int
		p    byte
	}
	cases := []struct {
		name string
		in   []uint16
		want []out
		late int
	}{
		{"in order", []uint16{10, 11, 12}, []out{{0, 10}, {0, 11}, {0, 12}}, 0},
		{"swapped", []uint16{10, 12, 11, 13}, []out{{0, 10}, {0, 11}, {0, 12}, {0, 13}}, 0},
		{"late after release", []uint16{10, 11, 13, 14, 15, 16, 12}, []out{{0, 10}, {0, 11}, {1, 13}, {0, 14}, {0, 15}, {0, 16}}, 1},
		{"duplicate", []uint16{10, 10, 11}, []out{{0, 10}, {0, 11}}, 1},
		{"wraps", []uint16{65534, 65535, 0, 1}, []out{{0, 254}, {0, 255}, {0, 0}, {0, 1}}, 0},
		{"gap skipped at depth", []uint16{1, 5, 6, 7, 8}, []out{{0, 1}, {3, 5}, {0, 6}, {0, 7}, {0, 8}}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReorder(4)
			var got []out
			late := 0
			for _, s := range tc.in {
				l, _ := r.push(s, []byte{byte(s)}, func(lost int, p []byte) bool {
					got = append(got, out{lost, p[0]})
					return true
				})
				if l {
					late++
				}
			}
			if !slices.Equal(got, tc.want) || late != tc.late {
				t.Errorf("got %v late %d, want %v late %d", got, late, tc.want, tc.late)
			}
		})
	}
}
