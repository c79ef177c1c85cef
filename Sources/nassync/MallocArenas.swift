import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// glibc's `mallopt(M_ARENA_MAX, n)`, looked up at run time: `<malloc.h>` is not part of the
/// C library module Swift imports.
enum MallocArenas {
    /// `M_ARENA_MAX` in glibc's `<malloc.h>`.
    private static let arenaMaxParameter: Int32 = -8

    static func limit(to count: Int32) {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMaxParameter, count)
        #endif
    }
}
