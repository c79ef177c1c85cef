import SFTPTransport

/// `sync -f` of the run's NAS file system every second while a big run is being sent, on a
/// connection of its own: the NAS's disk writes the run while the network still brings it, so
/// the `sync -f` that proves the run durable, after the last file, finds little left to write.
///
/// Only a head start: nothing counts on these syncs, their failures are ignored (the flusher
/// just stops), and the final sync is made all the same.
struct EarlyFlush: Sendable {
    /// Below this a run's final sync is short anyway, and the extra login would cost more.
    static let minimumBytes: Int64 = 32 << 20
    static let interval: Duration = .seconds(1)

    private let task: Task<Int, Never>
    /// Syncs made so far.
    let made: LockedValue<Int>

    /// Starts flushing `folder` unless the run is too small to gain from it.
    static func start(folder: String, bytes: Int64, connect: @escaping NASConnector, timeout: Duration) -> EarlyFlush? {
        guard bytes >= minimumBytes else { return nil }
        let made = LockedValue(0)
        let task = Task {
            guard let sftp = try? await connect() else { return 0 }
            // Real time, not the agent's clock: it is the disk's time that is being used.
            while (try? await Task.sleep(for: interval)) != nil {
                do {
                    try await NASDurability.sync(folder, sftp, timeout: timeout)
                    made.update { $0 += 1 }
                } catch {
                    break
                }
            }
            await sftp.close()
            return made.get()
        }
        return EarlyFlush(task: task, made: made)
    }

    /// Stops flushing (a sync under way is cut off) and says how many syncs were made.
    func stop() async -> Int {
        task.cancel()
        return await task.value
    }
}
