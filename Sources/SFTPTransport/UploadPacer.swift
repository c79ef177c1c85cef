/// Holds uploads to a rate: called, on the connection's own thread, after each batch of bytes
/// the server has taken. It may block (that is how it slows the upload down), and must come
/// back soon once `shouldStop` says so.
public protocol UploadPacer: Sendable {
    func pace(_ bytes: Int, shouldStop: () -> Bool)
}
