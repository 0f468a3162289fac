package proxy

import (
	"sync"
	"testing"
	"time"
)

// TestPassedWakesBarrier races passed (the upstream loop, lock-free when
// no barrier waits) against waitAnswered (a barrier) many times: every
// barrier must end once the message that emptied the queue is passed.
// A passed that looked at the waiters before clearing passing, or not at
// all, leaves a barrier asleep here within a few thousand rounds.
func TestPassedWakesBarrier(t *testing.T) {
	s := &session{}
	s.drained = sync.NewCond(&s.stateMu)
	for round := 0; round < 20000; round++ {
		s.stateMu.Lock()
		s.passing.Store(true)
		s.stateMu.Unlock()
		done := make(chan error, 1)
		go func() { done <- s.waitAnswered() }()
		if round%2 == 0 {
			time.Sleep(time.Microsecond) // now and then the barrier waits first
		}
		s.passed()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the barrier was not woken by passed", round)
		}
	}
	if n := s.answerWaiters.Load(); n != 0 {
		t.Fatalf("%d waiters counted after every barrier ended", n)
	}
}
