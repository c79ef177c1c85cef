import ServiceLifecycle

/// One of the agent's stages: a loop that runs until its task is cancelled, beating its heart
/// whenever it gets something done (see `Liveness`).
public protocol AgentLoop: Sendable {
    /// The name the watchdog knows the loop by (`agent.stalled`, `agent.stop_forced`).
    var loopName: String { get }
    func run(heart: Heart) async
}

/// A stage as a service of the agent's group: cancelled, and so stopped, on graceful shutdown;
/// its beats and its end are told to the agent's `Liveness`.
struct LoopService: Service, CustomStringConvertible {
    let loop: any AgentLoop
    let liveness: Liveness

    var description: String { loop.loopName }

    func run() async throws {
        let name = loop.loopName
        defer { liveness.ended(name) }
        let heart = liveness.heart(name)
        await cancelWhenGracefulShutdown { await loop.run(heart: heart) }
    }
}
