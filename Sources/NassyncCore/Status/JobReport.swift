import Foundation
import SFTPTransport

/// How `nassync status` shows jobs: a JSON object per job, or an aligned table row.
public enum JobReport {
    /// The JSON object DESIGN.md promises for `status --json`, plus a few more fields.
    public static func json(_ job: Job) -> String {
        func time(_ date: Date?) -> String { date.map { JSONText.string(Timestamp.iso8601($0)) } ?? "null" }
        return JSONText.object([
            "id": String(job.id ?? 0),
            "run_path": JSONText.string(job.runPath),
            "instrument": JSONText.string(job.instrument),
            "state": JSONText.string(job.state.rawValue),
            "priority": String(job.priority),
            "attempts": String(job.attempts),
            "verify_passes": String(job.verifyPasses),
            "last_error": JSONText.string(job.lastError),
            "enqueued_at": time(job.enqueuedAt),
            "last_attempt_at": time(job.lastAttemptAt),
            "next_attempt_at": time(job.nextAttemptAt),
            "first_verified_at": time(job.firstVerifiedAt),
            "verified_at": time(job.verifiedAt),
            "updated_at": time(job.updatedAt),
            "nas_path": JSONText.string(job.nasPath),
            "run_id": JSONText.string(job.runID),
            "ignored_at": time(job.ignoredAt),
            "files": String(job.files),
            "bytes": String(job.bytes),
        ])
    }

    /// The job's object with `progress` and `waiting` (each null when there is nothing to say).
    public static func json(_ job: Job, activity: JobActivity) -> String {
        String(json(job).dropLast())
            + activity.jsonMembers.map { "," + JSONText.string($0.0) + ":" + $0.1 }.joined() + "}"
    }

    /// A job with its audit trail, as one JSON object (`events` oldest first).
    public static func json(_ job: Job, activity: JobActivity, events: [JobEvent]) -> String {
        String(json(job, activity: activity).dropLast()) + "," + String(eventsMember(events).dropFirst())
    }

    /// `{"events":[…]}` for a job's audit trail.
    private static func eventsMember(_ events: [JobEvent]) -> String {
        let trail = events.map { event in
            JSONText.object([
                "at": JSONText.string(Timestamp.iso8601(event.at)),
                "from": JSONText.string(event.fromState?.rawValue),
                "to": JSONText.string(event.toState.rawValue),
                "reason": JSONText.string(event.reason),
                "detail": JSONText.string(event.detail),
            ])
        }
        return "{\"events\":[" + trail.joined(separator: ",") + "]}"
    }

    /// One line of the audit trail: `2026-11-23T17:50:43.800Z  cleanup_eligible -> cleaned  local data deleted: …`.
    public static func eventLine(_ event: JobEvent) -> String {
        let move = (event.fromState.map { "\($0.rawValue) -> " } ?? "") + event.toState.rawValue
        return Timestamp.iso8601(event.at) + "  " + pad(move, 36) + "  " + printable(event.reason)
            + (event.detail.map { ": " + printable($0) } ?? "")
    }

    /// Column layout of the table; fixed so rows can be printed as they are read.
    public static let tableHeader = row(
        id: "ID", state: "STATE", priority: "PRIO", attempts: "TRIES", passes: "PASSES", files: "FILES", bytes: "SIZE",
        enqueued: "ENQUEUED", next: "NEXT", run: "RUN")

    /// Where a job's progress or waiting line starts under its row: below the STATE column.
    public static let activityIndent = String(repeating: " ", count: 10)

    public static func tableRow(_ job: Job) -> String {
        var run = printable(job.runPath)
        if let error = job.lastError, job.state == .failed || job.attempts > 0 {
            run += "  (" + printable(error) + ")"
        }
        return row(
            id: String(job.id ?? 0), state: job.state.rawValue, priority: String(job.priority),
            attempts: String(job.attempts),
            passes: String(job.verifyPasses), files: String(job.files), bytes: byteCount(job.bytes),
            enqueued: shortTime(job.enqueuedAt), next: job.nextAttemptAt.map(shortTime) ?? "-", run: run)
    }

    private static func row(
        id: String, state: String, priority: String, attempts: String, passes: String, files: String, bytes: String, enqueued: String,
        next: String, run: String
    ) -> String {
        pad(id, 8, right: true) + "  " + pad(state, 16) + "  " + pad(priority, 5, right: true) + "  "
            + pad(attempts, 5, right: true) + "  "
            + pad(passes, 6, right: true) + "  " + pad(files, 7, right: true) + "  " + pad(bytes, 9, right: true) + "  "
            + pad(enqueued, 20) + "  " + pad(next, 20) + "  " + run
    }

    private static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let gap = max(0, width - text.count)
        return right ? String(repeating: " ", count: gap) + text : text + String(repeating: " ", count: gap)
    }

    /// `2026-11-22T13:45:00Z`: the table has no room for milliseconds.
    public static func shortTime(_ date: Date) -> String {
        let full = Timestamp.iso8601(date)
        return String(full.prefix(19)) + "Z"
    }

    /// 1 KiB = 1024 bytes, one decimal.
    public static func byteCount(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// A path or message on one line: control characters are shown escaped, never printed raw,
    /// and a path's bytes that are not UTF-8 as `\xNN`.
    public static func printable(_ text: String) -> String {
        let text = text.displayPath
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return text }
        let escaped = JSONText.string(text)
        return String(escaped.dropFirst().dropLast())
    }
}
