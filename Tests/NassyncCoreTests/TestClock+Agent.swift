import NassyncCore
import TestSupport

extension TestClock {
    /// Its time for the stages, which still pause in real time: for tests that drive a stage
    /// step by step (`scan`, `sweep`) rather than running its loop.
    var agent: AgentClock { AgentClock(now: function) }

    /// Its time for the stages, pausing on `ticks` too: loops run only as far as the test
    /// moves the clock.
    var manual: AgentClock { AgentClock(ticks, now: function) }
}
