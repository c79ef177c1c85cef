import Foundation
import Testing
import TestSupport

@Test("the test NAS is there when scripts/test says it must be")
func testNASPresentWhenRequired() {
    if ProcessInfo.processInfo.environment["NASSYNC_REQUIRE_NAS"] == "1" {
        #expect(TestNAS.isAvailable, "NASSYNC_REQUIRE_NAS=1 but no test NAS was found; the NAS tests would be skipped")
    }
}
