import Foundation
import Logging
import NassyncCore
import Testing

struct EventLineTests {
    let date = Date(timeIntervalSince1970: 1_795_000_000.5)

    @Test("logfmt: stable order, bare simple values, quoted and escaped awkward ones")
    func logfmt() {
        let line = EventLine.format(
            .logfmt, date: date, level: .info, event: "cleanup.deleted",
            metadata: ["run": "/data/run 1\n\"x\"=y", "job": .stringConvertible(12), "bytes": "100"])
        #expect(line == #"ts=2026-11-18T11:06:40.500Z level=info event=cleanup.deleted job=12 run="/data/run 1\n\"x\"=y" bytes=100"#)
        #expect(!line.contains("\n"), "a file name never breaks a line")
    }

    @Test("JSON lines: numbers stay numbers, strings are escaped, one object per line")
    func json() throws {
        let line = EventLine.format(
            .json, date: date, level: .warning, event: "run.changed",
            metadata: ["job": .stringConvertible(7), "run": "a\tb\"c", "files": .array(["x", "y"]),
                       "seconds": .stringConvertible(0.25), "inotify": .stringConvertible(true)])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["ts"] as? String == "2026-11-18T11:06:40.500Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["event"] as? String == "run.changed")
        #expect(object["job"] as? Int == 7)
        #expect(object["run"] as? String == "a\tb\"c")
        #expect(object["files"] as? [String] == ["x", "y"])
        #expect(object["seconds"] as? Double == 0.25)
        #expect(object["inotify"] as? Bool == true)
    }
}
