/// Process exit codes (sysexits.h), as DESIGN.md fixes them.
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    /// EX_USAGE
    public static let usage: Int32 = 64
    /// EX_CONFIG
    public static let badConfig: Int32 = 78
}
