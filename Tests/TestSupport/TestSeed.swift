import Foundation

/// The seed of a test that draws random numbers: `NASSYNC_TEST_SEED` when set, so a failure
/// can be run again with the same draws, otherwise a fresh one. Printed either way.
public func testSeed(_ test: String) throws -> UInt64 {
    let seed: UInt64
    if let text = ProcessInfo.processInfo.environment["NASSYNC_TEST_SEED"] {
        guard let value = UInt64(text) else { throw BadTestSeed(text: text) }
        seed = value
    } else {
        seed = UInt64.random(in: .min ... .max)
    }
    print("\(test): seed=\(seed) (NASSYNC_TEST_SEED=\(seed) replays it)")
    return seed
}

public struct BadTestSeed: Error, CustomStringConvertible {
    public var text: String
    public var description: String { "NASSYNC_TEST_SEED=\(text) is not an unsigned 64-bit integer" }
}

/// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
