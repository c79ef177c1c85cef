#if canImport(Glibc)
import Glibc
#endif

/// Shell-style globs (`*`, `?`, `[...]`) as the config writes them, matched with `fnmatch`.
///
/// A leading dot must be matched explicitly, so `*` never picks up `.nassync` or hidden
/// folders; in path patterns `*` does not cross `/`.
public struct Glob: Sendable, Equatable {
    public let pattern: String

    public init(_ pattern: String) {
        self.pattern = pattern
    }

    /// Matches one file or folder name.
    public func matches(name: String) -> Bool {
        fnmatch(pattern, name, FNM_PERIOD) == 0
    }

    /// Matches a relative path, `/` by `/`.
    public func matches(path: String) -> Bool {
        fnmatch(pattern, path, FNM_PATHNAME | FNM_PERIOD) == 0
    }

    /// True when the pattern has no wildcard, so it names exactly one entry.
    public var isLiteral: Bool {
        !pattern.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" || $0 == "\\" })
    }
}

/// The `ignore` globs of an instrument: a match on the file's name or on its path in the run.
public struct IgnoreRules: Sendable, Equatable {
    public let globs: [Glob]

    public init(_ patterns: [String]) {
        globs = patterns.map(Glob.init)
    }

    public func ignores(name: String, relativePath: String) -> Bool {
        globs.contains { $0.matches(name: name) || $0.matches(path: relativePath) }
    }
}
