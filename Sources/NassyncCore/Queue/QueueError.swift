/// Why the queue refused something. `code` can grow; callers switch on the ones they handle.
public struct QueueError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// There is no queue file yet (only for read-only access, which never creates one).
        public static let noQueue = Code("no_queue")
        /// The file exists but is not a nassync queue (another program's database, or not SQLite).
        public static let notAQueue = Code("not_a_queue")
        /// A newer nassync wrote the file; this build does not know its schema.
        public static let newerSchema = Code("newer_schema")
        /// SQLite reports corruption.
        public static let damaged = Code("damaged")
        /// Another agent holds the state folder.
        public static let locked = Code("locked")
        /// The disk under the state folder is full.
        public static let diskFull = Code("disk_full")
        /// The state machine does not allow this move.
        public static let illegalTransition = Code("illegal_transition")
        public static let noSuchJob = Code("no_such_job")
        /// Any other SQLite or file system failure.
        public static let io = Code("io")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
