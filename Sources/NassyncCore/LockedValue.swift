import Synchronization

/// A value shared between tasks, read and replaced under a lock.
final class LockedValue<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    init(_ value: Value) {
        storage = Mutex(value)
    }

    func get() -> Value { storage.withLock { $0 } }

    /// Changes the value in place, under the lock.
    func update(_ change: (inout Value) -> Void) {
        storage.withLock { change(&$0) }
    }

    /// Stores `value` and returns what was there.
    @discardableResult
    func swap(_ value: Value) -> Value {
        storage.withLock { stored in
            let old = stored
            stored = value
            return old
        }
    }
}
