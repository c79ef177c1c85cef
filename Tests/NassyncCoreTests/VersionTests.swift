import NassyncCore
import Testing

@Test func versionIsSemantic() {
    #expect(nassyncVersion.split(separator: ".").count == 3)
}
